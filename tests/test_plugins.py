"""Plugin machinery: discovery through entry points, failures that never break the CLI, clashes."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genrec
from conftest import ROOT, pip_install_target, run_genrec
from genrec.errors import ConfigError, PluginError
from genrec.registry import Registry

BUILT_INS = {
    ("embedder", "text"),
    ("embedder", "tfidf"),
    ("embedder", "precomputed"),
    ("embedder", "sasrec"),
    ("fuser", "semantic"),
    ("fuser", "collaborative"),
    ("fuser", "concat"),
    ("fuser", "prorec-align"),
    ("quantizer", "rkmeans"),
    ("quantizer", "kmeans"),
    ("quantizer", "rqvae"),
    ("quantizer", "prorec-distill"),
    ("generator", "tiger"),
    ("generator", "causal"),
    ("generator", "sasrec"),
    ("recipe", "prorec"),
    ("recipe", "tiger"),
    ("recipe", "sasrec"),
}


def _package(root: Path, name: str, module_source: str) -> Path:
    """A minimal plugin distribution ``name`` whose module is ``module_source``."""
    module = name.replace("-", "_")
    source = root / name
    source.mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "1.2.3"

            [project.entry-points.genrec]
            {module} = "{module}"

            [tool.setuptools]
            py-modules = ["{module}"]
            """
        )
    )
    (source / f"{module}.py").write_text(textwrap.dedent(module_source))
    return source


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documented example plugin and two broken ones, pip-installed into one directory."""
    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    pip_install_target(ROOT / "docs" / "examples" / "genrec-lsh", target)
    pip_install_target(_package(root, "broken-import", "raise ImportError('needs the package frobnicate')\n"), target)
    pip_install_target(
        _package(
            root,
            "broken-hook",
            """
            import genrec

            @genrec.hookimpl
            def genrec_register(registry):
                registry.add("quantizer", "half-registered", lambda: None)
                raise RuntimeError("registration went wrong")
            """,
        ),
        target,
    )
    return target


def _list(installed: Path, **env: str):
    return run_genrec("list", "--json", env={"PYTHONPATH": str(installed), **env})


def test_documented_example_plugin_shows_up_in_list(installed):
    result = _list(installed)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    lsh = [c for c in payload["components"] if c["name"] == "lsh"]
    assert lsh == [
        {"kind": "quantizer", "name": "lsh", "plugin": "lsh", "description": "random-hyperplane sign bits per level"}
    ]


def test_genrec_show_prints_the_example_plugins_documented_options(installed):
    result = run_genrec("show", "lsh", "--json", env={"PYTHONPATH": str(installed)})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    options = {o["name"]: o for o in payload["options"]}
    assert options["bits"]["default"] == 8
    assert options["bits"]["doc"] == "Sign bits per level, so `2 ** bits` codes in each."
    assert "Parameters" not in payload["doc"] and payload["doc"].startswith("Random-hyperplane sign bits")


def test_broken_plugins_are_reported_without_breaking_the_command(installed):
    result = _list(installed)
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    failures = {f["plugin"]: f["error"] for f in payload["failures"]}
    assert "frobnicate" in failures["broken_import"]
    assert "registration went wrong" in failures["broken_hook"]
    # what the failing hook added before raising is rolled back
    assert all(c["name"] != "half-registered" for c in payload["components"])
    table = run_genrec("list", env={"PYTHONPATH": str(installed)})
    assert table.returncode == 0 and "broken_import" in table.stdout


def test_strict_mode_makes_a_broken_plugin_fatal(installed):
    result = _list(installed, GENREC_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert "broken_hook" in result.stderr or "broken_import" in result.stderr
    assert "Traceback" not in result.stderr


def test_allowlist_loads_only_named_plugins(installed):
    result = _list(installed, GENREC_LOAD_PLUGINS="lsh,quantizers")
    names = {(c["kind"], c["name"]) for c in json.loads(result.stdout)["components"]}
    assert ("quantizer", "lsh") in names and ("quantizer", "rkmeans") in names
    assert ("generator", "tiger") not in names
    assert json.loads(result.stdout)["failures"] == []


def test_plugins_command_shows_versions_and_errors(installed):
    result = run_genrec("plugins", "--json", env={"PYTHONPATH": str(installed)})
    infos = {info["name"]: info for info in json.loads(result.stdout)}
    assert infos["lsh"]["version"] == "0.1.0" and infos["lsh"]["components"] == ["quantizer:lsh"]
    assert infos["broken_hook"]["version"] == "1.2.3" and infos["broken_hook"]["error"]


def test_every_built_in_component_is_listed():
    result = run_genrec("list", "--json")
    payload = json.loads(result.stdout)
    assert payload["failures"] == []
    listed = {(c["kind"], c["name"]) for c in payload["components"]}
    assert listed >= BUILT_INS
    assert all(c["plugin"] != "<unknown>" and c["description"] for c in payload["components"])


def test_listing_imports_no_heavy_library():
    code = (
        "import sys; from genrec.discovery import get_plugins; get_plugins(); "
        "print(sorted(m for m in ('torch', 'sklearn', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_duplicate_registration_names_both_plugins(registry, register):
    class First:
        @genrec.hookimpl
        def genrec_register(self, registry):
            registry.add(
                "quantizer", "same", "genrec_plugins.quantizers.kmeans:HierarchicalKMeans", description="first"
            )

    class Second:
        @genrec.hookimpl
        def genrec_register(self, registry):
            registry.add("quantizer", "same", "genrec_plugins.quantizers.rkmeans:ResidualKMeans", description="second")

    assert register(First(), name="first").error is None
    info = register(Second(), name="second")
    assert "'first'" in info.error and "'second'" in info.error
    assert registry.get("quantizer", "same").description == "first"


class NoHookimpl:
    def genrec_register(self, registry):  # the @genrec.hookimpl is missing
        registry.add("quantizer", "forgotten", "genrec_plugins.quantizers.kmeans:HierarchicalKMeans")


class MisspeltHook:
    @genrec.hookimpl
    def genrec_regster(self, registry):
        registry.add("quantizer", "misspelt", "genrec_plugins.quantizers.kmeans:HierarchicalKMeans")


class MissingModule:
    @genrec.hookimpl
    def genrec_register(self, registry):
        registry.add("quantizer", "lazy", "genrec_nowhere.quantizer:Quantizer")
        registry.add("quantizer", "fine", "genrec_plugins.quantizers.kmeans:HierarchicalKMeans")


@pytest.mark.parametrize(
    ("plugin", "fragment"),
    [
        (NoHookimpl(), "no genrec_register hook (is the function decorated with @genrec.hookimpl?)"),
        (MisspeltHook(), "genrec_regster"),
        (MissingModule(), "quantizer 'lazy': its factory 'genrec_nowhere.quantizer:Quantizer' names no module"),
    ],
)
def test_a_plugin_that_would_register_nothing_silently_is_a_recorded_failure(registry, register, plugin, fragment):
    info = register(plugin, name="author")
    assert info.error and fragment in info.error
    assert len(registry) == 0  # nothing half-registered
    with pytest.raises(ConfigError, match="plugin\\(s\\) 'author' failed to load, see genrec plugins"):
        registry.get("quantizer", "lazy")


def test_unknown_kind_and_bad_factory_are_errors():
    registry = Registry()
    with pytest.raises(PluginError, match="unknown kind"):
        registry.add("widget", "w", lambda: None)
    with pytest.raises(PluginError, match="module:attribute"):
        registry.add("quantizer", "q", "no-colon")


def test_options_are_validated_and_coerced(registry):
    from typing import Literal

    from genrec.errors import ConfigError

    def factory(levels: int = 3, rate: float = 0.1, mode: Literal["a", "b"] = "a", flag: bool = False):
        return (levels, rate, mode, flag)

    registry.add("quantizer", "f", factory)
    assert registry.create("quantizer", "f", levels="4", rate="0.5", mode="b", flag="true") == (4, 0.5, "b", True)
    with pytest.raises(ConfigError, match="unknown option 'level'.*accepted: flag, levels, mode, rate"):
        registry.create("quantizer", "f", level="4")
    with pytest.raises(ConfigError, match="option 'levels'.*'four'"):
        registry.create("quantizer", "f", levels="four")
    with pytest.raises(ConfigError, match="'c' is not one of a, b"):
        registry.create("quantizer", "f", mode="c")
    with pytest.raises(ConfigError, match="unknown quantizer 'nope'"):
        registry.create("quantizer", "nope")


def test_lazy_factory_that_cannot_load_names_plugin_and_target(registry):
    registry.add("quantizer", "ghost", "genrec_missing_module:Ghost")
    with pytest.raises(PluginError, match="ghost.*genrec_missing_module:Ghost"):
        registry.create("quantizer", "ghost")


def test_the_hook_is_documented():
    from genrec import hookspecs

    assert hookspecs.genrec_register.__doc__
    docs = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    assert "genrec_register" in docs and "[project.entry-points.genrec]" in docs


def test_example_plugin_tests_pass_with_genrec_fixtures():
    """The example's own tests run with the fixtures from genrec's pytest11 plugin."""
    example = ROOT / "docs" / "examples" / "genrec-lsh"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example / "test_genrec_lsh.py")],
        capture_output=True,
        text=True,
        cwd=example,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


RENAMED = [
    ("genrec.plugins", "genrec.discovery", "get_registry"),
    ("genrec.recipe", "genrec.recipe_command", "run_recipe"),
]


@pytest.mark.parametrize(("old", "new", "name"), RENAMED)
def test_the_earlier_module_names_still_import_with_a_deprecation_warning(old, new, name):
    import importlib

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
