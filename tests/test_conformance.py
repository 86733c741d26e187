"""PyTorch programs run as written: every program in tests/conformance/ runs twice, once on
PyTorch and once on chainrule with only its import lines changed, and must give the same numbers.

A program is a complete PyTorch script in the published styles (tutorials, d2l, the examples
repository). Its initial values come from NumPy (PyTorch's random streams are not ours), so both
runs start from the same numbers. What is compared:

* everything it prints: the same text, with every number agreeing to the tolerance (PyTorch's
  ``torch.`` prefixes and module descriptions aside: docs/pytorch-differences.md);
* every tensor, module (its state dict) and number it leaves at the top level (losses, final
  weights, accuracies), by name.

Tolerance: relative 1e-10 where a program computes in float64, 1e-5 where it uses float32,
measured against the largest value of what is compared (a tensor, a list, a module's whole state
dict), so that values near 0 are not held to more digits than the rest of their group.

A float32 result is as exact as the sums it came from, not as its own size: rounding leaves an
error of a few epsilons (1.2e-7) of the *terms* of a sum, and where the terms cancel (a residual
``y_hat - y``, a gradient averaged over a batch near a minimum) the result is small and that error
is large beside it. Its size then depends on the order in which the BLAS kernel sums (OpenBLAS's
SkylakeX, Haswell and Prescott kernels, MKL inside PyTorch), and differs from machine to machine.
Such values are compared against the size of what cancelled (:data:`SCALES`), computed from the
program's own values, with the same 1e-5 (about 84 epsilons: the error of a sum of a few hundred
terms, compounded over the training steps the programs run).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch", reason="the conformance suite compares with PyTorch")


def _residual_scale(loss_name: str, labels_name: str):
    """A squared residual ``l = (y_hat - y)**2 / 2``: ``y_hat`` and ``y`` (of size ``|y|``) cancel
    into ``r = sqrt(2 l)``, so ``r`` carries an error of epsilons of ``|y|``, and ``l`` one of
    ``|r| * |y|`` epsilons."""

    def scale(namespace: dict) -> float:
        residual = np.sqrt(2 * largest(as_values(namespace[loss_name])))
        return float(residual * largest(as_values(namespace[labels_name])))

    return scale


def _per_example_gradient_scale(namespace: dict) -> float:
    """A gradient of a mean squared error over a batch is the mean of one gradient per example;
    near a minimum they cancel, and the mean carries an error of epsilons of their sizes:
    ``mean_i |grad_i|``, the largest entry over all parameters (PyTorch's ``model``, ``inputs``,
    ``targets``, once per example)."""
    model, inputs, targets = (namespace[k] for k in ("model", "inputs", "targets"))
    sizes = [torch.zeros_like(p) for p in model.parameters()]
    for x, t in zip(inputs, targets):
        model.zero_grad()
        torch.nn.functional.mse_loss(model(x[None]), t[None]).backward()
        for size, p in zip(sizes, model.parameters()):
            size += p.grad.abs() / len(inputs)
    return max(float(size.max()) for size in sizes)


# Values that are what is left where larger values cancel, and the size of what cancelled, from
# the program's values as PyTorch computed them (see the module docstring).
SCALES = {
    # a = c = 0 exactly (sin is odd): their gradients are the rounding errors of float32 sums of
    # terms of the size of the coefficients (about 1)
    ("polynomial_custom_function", "a"): lambda namespace: 1.0,
    ("polynomial_custom_function", "c"): lambda namespace: 1.0,
    # squared residuals of a fit to noise 0.01 on labels up to about 20: the last batch, all data
    ("d2l_linear_regression", "l"): _residual_scale("l", "y"),
    ("d2l_linear_regression", "train_l"): _residual_scale("train_l", "labels"),
    # gradients of the final model over 128 examples, after clipping by value (at 0.1)
    ("gradient_clipping", "clipped"): _per_example_gradient_scale,
}

PROGRAMS = sorted((Path(__file__).parent / "conformance").glob("*.py"))
NUMBER = re.compile(r"-?\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf")

IMPORT = re.compile(r"^(\s*)import torch(\.[\w.]+)? as (\w+)(\s*#.*)?$")
IMPORT_BARE = re.compile(r"^(\s*)import torch(\s*#.*)?$")
FROM_IMPORT = re.compile(r"^(\s*)from torch(\.[\w.]+)? import (.+)$")


def swap_imports(source: str) -> str:
    """The program with ``torch`` replaced by ``chainrule`` in its import lines, and only there."""
    lines = []
    for line in source.splitlines():
        if match := IMPORT.match(line):
            indent, path, name, comment = match.groups()
            line = f"{indent}import chainrule{path or ''} as {name}{comment or ''}"
        elif match := IMPORT_BARE.match(line):
            line = f"{match.group(1)}import chainrule as torch{match.group(2) or ''}"
        elif match := FROM_IMPORT.match(line):
            indent, path, names = match.groups()
            line = f"{indent}from chainrule{path or ''} import {names}"
        elif re.match(r"^\s*(import|from)\s+torch\b", line):
            raise ValueError(f"an import form the swap does not handle: {line!r}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(path: Path, source: str, folder: Path, monkeypatch) -> tuple[dict, str]:
    """Execute ``source`` as ``__main__`` in ``folder``; return its globals and what it printed."""
    folder.mkdir()
    monkeypatch.chdir(folder)
    namespace = {"__name__": "__main__", "__file__": str(path)}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(path), "exec"), namespace)
    return namespace, printed.getvalue()


@contextlib.contextmanager
def isolated_frameworks():
    """Leave both frameworks' random streams, default dtypes and devices as they were.

    PyTorch runs on one thread meanwhile: these programs are thousands of tiny ops, which its
    thread pool makes many times slower on a busy machine (a word-level LSTM: 17 s against
    0.7 s with four other jobs on two cores)."""
    torch_dtype, cr_dtype = torch.get_default_dtype(), cr.get_default_dtype()
    torch_device, cr_state = torch.get_default_device(), cr.get_rng_state()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        try:
            yield
        finally:
            torch.set_num_threads(torch_threads)
            torch.set_default_device(torch_device)
            torch.set_default_dtype(torch_dtype)
            cr.set_default_dtype(cr_dtype)
            cr.set_rng_state(cr_state)


def as_values(value):
    """A comparable form of a top-level value: arrays for tensors, dicts of arrays for modules,
    numbers, or None for anything else (functions, classes, data loaders, ...)."""
    if isinstance(value, (torch.Tensor, cr.Tensor)):
        return np.array(value.detach().numpy())
    if isinstance(value, (torch.nn.Module, cr.nn.Module)):
        return {k: as_values(v) for k, v in value.state_dict().items()}
    if isinstance(value, (bool, int, float)):
        return value
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, (int, float, torch.Tensor, cr.Tensor)) for v in value)
    ):
        return [as_values(v) for v in value]
    return None


def without_module_reprs(namespace: dict, text: str) -> str:
    """``text`` with what ``print(model)`` printed replaced by a placeholder: chainrule describes
    layers in its own words (``Linear(784 -> 512)``; see docs/pytorch-differences.md)."""
    modules = [v for v in namespace.values() if isinstance(v, (torch.nn.Module, cr.nn.Module))]
    for text_of_module in sorted({repr(m) for m in modules}, key=len, reverse=True):
        text = text.replace(text_of_module, "<module>")
    return text


def cosmetic(text: str) -> str:
    """``text`` without what only names an implementation: the op behind ``grad_fn=``."""
    return re.sub(r"grad_fn=<\w+>", "grad_fn=<op>", text)


def tolerance(namespace: dict) -> float:
    """1e-5 if the program computed with any float32 tensor, else 1e-10."""
    for value in namespace.values():
        values = as_values(value)
        arrays = values.values() if isinstance(values, dict) else [values]
        if any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays):
            return 1e-5
    return 1e-10


def largest(values) -> float:
    """The largest finite magnitude in a value, a list or a dict of them."""
    if isinstance(values, dict):
        return max((largest(v) for v in values.values()), default=0.0)
    if isinstance(values, list):
        return max((largest(v) for v in values), default=0.0)
    array = np.asarray(values, dtype=float)
    return float(np.max(np.abs(array[np.isfinite(array)]), initial=0.0))


def assert_close(ours, theirs, rtol: float, what: str, scale: float | None = None) -> None:
    """``ours`` equals ``theirs`` within ``rtol`` of ``scale`` (default: its largest value)."""
    if isinstance(theirs, dict):  # a module: one scale for its whole state
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), f"{what}: keys differ"
        scale = largest(theirs) if scale is None else scale
        for key in theirs:
            assert_close(ours[key], theirs[key], rtol, f"{what}[{key!r}]", scale)
        return
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{what}: lengths differ"
        if all(isinstance(v, (int, float)) for v in theirs):
            ours, theirs = np.array(ours, dtype=float), np.array(theirs, dtype=float)
        else:
            for k, (a, b) in enumerate(zip(ours, theirs)):
                assert_close(a, b, rtol, f"{what}[{k}]", scale)
            return
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != PyTorch's {theirs.shape}"
    if theirs.dtype.kind in "biu":
        assert ours.dtype.kind in "biu", f"{what}: dtype {ours.dtype}, PyTorch's {theirs.dtype}"
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return
    assert ours.dtype == theirs.dtype or theirs.dtype.kind != "f", f"{what}: dtype differs"
    scale = largest(theirs) if scale is None else scale
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


# NumPy warns where PyTorch is silent (log of a negative number is nan either way)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_program_gives_pytorchs_numbers_on_chainrule(path, tmp_path, monkeypatch):
    source = path.read_text()
    swapped = swap_imports(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), swapped.splitlines()) if a != b]
    assert changed and all(re.match(r"\s*(import|from) ", a) for a, _ in changed)
    with isolated_frameworks():
        theirs, their_text = run(path, source, tmp_path / "pytorch", monkeypatch)
    with isolated_frameworks():
        ours, our_text = run(path, swapped, tmp_path / "chainrule", monkeypatch)
    rtol = tolerance(theirs)

    their_text = cosmetic(re.sub(r"\btorch\.", "", without_module_reprs(theirs, their_text)))
    our_text = cosmetic(without_module_reprs(ours, our_text))
    assert NUMBER.sub("#", our_text) == NUMBER.sub("#", their_text), "printed text differs"
    our_numbers, their_numbers = NUMBER.findall(our_text), NUMBER.findall(their_text)
    assert_close(
        [float(n) for n in our_numbers], [float(n) for n in their_numbers], rtol, "printed"
    )

    compared = 0
    for name, value in theirs.items():
        expected = as_values(value)
        if expected is None or name.startswith("_"):
            continue
        assert name in ours, f"{name} is missing from chainrule's run"
        scale = SCALES.get((path.stem, name))
        assert_close(as_values(ours[name]), expected, rtol, name, scale and scale(theirs))
        compared += 1
    assert compared, "the program left nothing to compare"


def test_only_import_lines_are_swapped_and_a_difference_is_caught():
    source = (
        "import torch\nimport torch.nn.functional as F  # F\nfrom torch import nn, optim\n"
        "from torch.utils.data import DataLoader\nx = torch.ones(2)  # torch stays torch here\n"
    )
    assert swap_imports(source) == (
        "import chainrule as torch\nimport chainrule.nn.functional as F  # F\n"
        "from chainrule import nn, optim\nfrom chainrule.utils.data import DataLoader\n"
        "x = torch.ones(2)  # torch stays torch here\n"
    )
    with pytest.raises(ValueError, match="import form"):
        swap_imports("import torch.nn\n")
    with pytest.raises(AssertionError):  # 2e-5 relative is outside float32's 1e-5
        assert_close(np.float32([1.0, 2.00004]), np.float32([1.0, 2.0]), 1e-5, "w")
    with pytest.raises(AssertionError):  # a module's values are compared entry by entry
        assert_close({"w": np.zeros(2)}, {"w": np.array([0.0, 1e-9])}, 1e-10, "model")
    assert_close([1.0, 3.0 + 2e-11], [1.0, 3.0], 1e-10, "losses")


def test_the_readme_example_is_a_conformance_program(tmp_path, monkeypatch):
    """The README's import-swap example gives PyTorch's numbers too."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## PyTorch programs run as written", 1)[1]
    ours_source = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "import chainrule as torch  # was: import torch" in ours_source
    source = ours_source.replace("import chainrule as torch  # was: import torch", "import torch")
    path = tmp_path / "readme_example.py"
    with isolated_frameworks():
        theirs, their_text = run(path, source, tmp_path / "pytorch", monkeypatch)
    with isolated_frameworks():
        ours, our_text = run(path, swap_imports(source), tmp_path / "chainrule", monkeypatch)
    assert NUMBER.sub("#", our_text) == NUMBER.sub("#", their_text)
    for name in ("a", "b", "c", "d", "loss"):
        assert_close(as_values(ours[name]), as_values(theirs[name]), 1e-5, name, scale=1.0)
