"""Built-in genrec plugins. Each subpackage is one plugin, loaded through the `genrec` entry-point group."""
