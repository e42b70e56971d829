"""The package's layers point one way: a module imports only from its own layer or below."""

import ast
from pathlib import Path

import dsa_jax

PACKAGE = Path(dsa_jax.__file__).parent

# Lowest first; a module belongs to the longest prefix that names it.
LAYERS = [
    ("base", ["dsa_jax._cpu_guard", "dsa_jax.validation", "dsa_jax.progress", "dsa_jax.__version__"]),
    ("env", ["dsa_jax.env"]),
    ("pruning and networks", ["dsa_jax.pruning", "dsa_jax.algorithms.networks"]),
    ("config", ["dsa_jax.config", "dsa_jax.migrations", "dsa_jax.presets", "dsa_jax.sharding"]),
    ("contract", ["dsa_jax.algorithms.program", "dsa_jax.algorithms.evaluation"]),
    ("algorithms and registry", ["dsa_jax.algorithms"]),
    ("reporting", ["dsa_jax.reporting"]),
    ("store", ["dsa_jax.store"]),
    ("training", ["dsa_jax.training"]),
    ("entry points", ["dsa_jax.cli", "dsa_jax.bench", "dsa_jax"]),
]


def layer(module: str) -> int:
    matches = [(len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """Every dsa_jax module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("dsa_jax")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dsa_jax"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if is_module(full) or alias.name == "__version__" else node.module)
    return found


def modules() -> dict[str, set[str]]:
    return {module_name(path): imported(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    """A new module must be placed: only the package root may fall back to the root's layer."""
    placed = [prefix for _, prefixes in LAYERS for prefix in prefixes if prefix != "dsa_jax"]
    for name in modules():
        assert name == "dsa_jax" or any(name == p or name.startswith(p + ".") for p in placed), f"{name} has no layer"


def test_imports_point_down_the_layers():
    upward = [f"{name} ({LAYERS[layer(name)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
              for name, targets in modules().items() for target in targets if layer(target) > layer(name)]
    assert not upward, "\n".join(upward)


def test_the_store_knows_no_algorithm():
    """The store may read the contract (state and metric types), never an algorithm or the
    registry: what it needs of a program is handed in by its caller."""
    for name, targets in modules().items():
        if name.startswith("dsa_jax.store"):
            algorithms = {t for t in targets if layer(t) == layer("dsa_jax.algorithms.registry")}
            assert not algorithms, f"{name} imports {sorted(algorithms)}"


def test_a_sub_package_does_not_import_the_package_root():
    """``from dsa_jax import X`` of a moved module would only work through the root's lazy names."""
    for name, targets in modules().items():
        if name != "dsa_jax":
            assert "dsa_jax" not in targets, f"{name} imports the package root"
