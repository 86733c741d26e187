"""The package's layering: each module imports only from the layers before it (see README)."""

import ast
from pathlib import Path

import chainrule

PACKAGE = Path(chainrule.__file__).parent
ORDER = [
    "backend",
    "threads",
    "sums",
    "cores",
    "files",
    "dtypes",
    "devices",
    "backends",
    "engine",
    "tensor",
    "generator",
    "creation",
    "function",
    "autograd",
    "ops",
    "api",
    "inplace",
    "gradcheck",
    "nn",
    "optim",
    "data",
    "utils",
    "serialization",
    "io",
    "train",
    "distributed",
    "models",
    "runs",
    "onnx",
    "sklearn",
    "lens",
    "playground",
    "cli",
    "__main__",
    "__init__",
]


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_layers(path: Path):
    tree = ast.parse(path.read_text())
    package_parts = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package_parts[: len(package_parts) - (node.level - 1)]
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [target[0]] if target else [alias.name for alias in node.names]
            yield from names
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chainrule")
        ):
            yield node.module.split(".")[1] if "." in node.module else "__init__"


def test_every_module_imports_only_earlier_layers():
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        for imported in imported_layers(path):
            assert ORDER.index(imported) <= ORDER.index(layer), f"{path}: imports {imported}"


def test_only_the_backend_imports_numpy_and_scipy():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "backend.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            assert not any(n.split(".")[0] in ("numpy", "scipy", "torch") for n in names), path


def test_array_module_specifics_go_through_the_backend():
    """Strided views, unbuffered adds, random generators and float-error states are NumPy
    specifics: only backend.py names them (what else a second array module would need is
    written in backend.py's docstring)."""
    forbidden = ("xp.lib", "xp.random", "xp.errstate", "xp.add.at", "stride_tricks", "np.random")
    for path in PACKAGE.rglob("*.py"):
        if path.name == "backend.py":
            continue
        code = path.read_text()
        for word in forbidden:
            assert word not in code, f"{path}: uses {word}; call the backend's helper instead"
