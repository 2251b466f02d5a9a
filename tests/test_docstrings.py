"""Option descriptions read from numpydoc ``Parameters`` sections, and the docs tables built from them."""

from genrec.docstrings import option_docs, option_table, summary, update_tables
from genrec.registry import Registry


class Base:
    """A base component.

    Parameters
    ----------
    width, depth : int
        Size of the model,
        over two lines.
    lr : float
        Step size.

    Notes
    -----
    lr : not an option entry
    """

    def __init__(self, width: int = 8, depth: int = 2, lr: float = 1e-3):
        pass


class Child(Base):
    """A child with one option of its own and one described again.

    Parameters
    ----------
    lr : float
        The child's ``lr``.
    name : str
        Its name.
    """

    def __init__(self, width: int = 8, depth: int = 2, lr: float = 1e-3, name: str = "x"):
        pass


def test_entries_group_names_join_lines_and_stop_at_the_next_section():
    size = "Size of the model, over two lines."
    assert option_docs(Base) == {"width": size, "depth": size, "lr": "Step size."}


def test_a_subclass_inherits_what_it_does_not_describe_again():
    docs = option_docs(Child)
    assert docs["lr"] == "The child's `lr`." and docs["name"] == "Its name." and docs["width"].startswith("Size")


def test_summary_leaves_out_the_parameters_section_only():
    text = summary(Base)
    assert "A base component." in text and "Notes" in text and "Step size" not in text


def test_tables_are_generated_from_the_docstring_and_stale_ones_are_found(tmp_path):
    registry = Registry()
    component = registry.add("generator", "child", Child)
    table = option_table(component)
    assert "| `width`, `depth` | 8, 2 | Size of the model, over two lines. |" in table
    assert "| `name` | `x` | Its name. |" in table
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- options: generator/child -->\n| old |\n<!-- end options -->\nrest\n")
    assert update_tables(page, registry, check=True) and "| old |" in page.read_text()
    assert update_tables(page, registry) and table in page.read_text()
    assert not update_tables(page, registry, check=True)
