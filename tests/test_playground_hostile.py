"""The playground against hostile input, each case generated here: file, column and class names
that try to break out of the exported script or its data.csv, and uploads holding numbers the
playground cannot use."""

import ast
import contextlib
import csv
import io
import runpy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule import data
from chainrule.cli import main
from chainrule.playground.export import DATA_FILE, write_run_folder
from chainrule.playground.points import PlaygroundError, build_points, read_upload
from chainrule.playground.script import python_script
from chainrule.playground.settings import OPTIMIZERS, Setup
from chainrule.playground.trainer import Trainer

# what ends a string, a docstring or a comment, continues a line or formats text
BREAKERS = [
    '"""',
    "'''",
    '"',
    "'",
    "\n",
    "\r",
    "\r\n",
    "\\",
    "\\n",
    "#",
    "{}",
    "%s",
    "\u2028",
    "\t",
]
PAYLOAD = "open('canary.txt', 'w').write('ran')"
# every call the script makes, whatever the names and settings
SCRIPT_CALLS = {
    "np.array",
    "np.concatenate",
    "Standardizer.fit",
    "standardize",
    "train_val_split",
    "cr.manual_seed",
    "cr.data.circles",
    "nn.Sequential",
    "nn.PlaneFeatures",
    "nn.Linear",
    "nn.Tanh",
    "nn.CrossEntropyLoss",
    "optim.SGD",
    "model.parameters",
    "isinstance",
    "DataLoader",
    "range",
    "model.train",
    "model.eval",
    "model",
    "loss_fn",
    "optimizer.zero_grad",
    "loss.backward",
    "optimizer.step",
    "cr.no_grad",
    "cr.tensor",
    "item",
    "print",
}
# and the calls that depend on the settings: data set, optimizer, activations, losses, penalty
SETUP_CALLS = {
    *(f"cr.data.{name}" for name in ("xor", "spirals", "two_gaussians", "line", "plane", "bumps")),
    *(f"optim.{cls}" for cls, _, _ in OPTIMIZERS.values()),
    *(f"nn.{layer}" for layer in ("Identity", "ReLU", "GELU", "Softplus", "Dropout", "MSELoss")),
    "sum",
    "w.abs",
    "mean",
    "std",
    "y.astype",
    "y_train.astype",
    "astype",
}
SCRIPT_IMPORTS = {"numpy", "chainrule", "chainrule.data"}


def names(one_line: bool = False):
    """Hostile names: pieces of BREAKERS, the payload and any text, between two letters (the
    CSV reader strips cells, and a column name may not be a number). ``one_line``: as the CSV
    reader takes column and class names, without a line break."""
    piece = st.sampled_from([*BREAKERS, PAYLOAD]) | st.text(max_size=4)
    text = st.lists(piece, min_size=1, max_size=6).map(lambda parts: "x" + "".join(parts) + "y")
    return text.filter(lambda s: s.splitlines() == [s]) if one_line else text


def upload_text(columns: list, classes: list, rows: int = 30) -> str:
    """A CSV file (quoted as CSV requires) with two numeric features and a class column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for i in range(rows):
        writer.writerow([i % 7 + 0.5 * (i % 2), i % 5, classes[i % len(classes)]])
    return buffer.getvalue()


def trained_upload(file_name: str, columns: list, classes: list, epochs: int = 1):
    upload = read_upload(file_name, upload_text(columns, classes))
    setup = Setup.from_dict({"dataset": "upload", "hidden": [3]}, upload)
    trainer = Trainer(setup, build_points(setup, upload))
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer, upload


def call_names(tree) -> set:
    """The dotted name of every call in the tree (``np.array``; ``item`` for ``(...).item``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
            found.add(".".join(reversed(parts)))
    return found


def imported(tree) -> set:
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module)
    return modules


@given(
    file_name=names(),
    columns=st.lists(names(one_line=True), min_size=3, max_size=3, unique=True),
    classes=st.lists(names(one_line=True), min_size=2, max_size=3, unique=True),
)
def test_the_script_of_hostile_names_makes_only_its_own_calls(file_name, columns, classes):
    trainer, upload = trained_upload(file_name.replace("/", ""), columns, classes)
    script = python_script(trainer, upload.name)
    tree = ast.parse(script)
    assert call_names(tree) <= SCRIPT_CALLS, call_names(tree) - SCRIPT_CALLS
    assert imported(tree) == SCRIPT_IMPORTS
    docstring = ast.get_docstring(tree, clean=False)
    assert upload.name in docstring and all(name in docstring for name in upload.classes)
    # everything but the docstring: assignments, the loop, the final lines; no other statement
    kinds = {type(node).__name__ for node in tree.body[1:]}
    assert kinds <= {"Import", "ImportFrom", "Assign", "For", "Expr", "With"}, kinds


def test_a_hostile_name_is_not_run_by_the_script_and_its_run_reads_back(tmp_path, capsys):
    """The issue's canary: a file name that closes the docstring and writes a file, and column
    and class names with quotes and commas (the CSV reader refuses line breaks in them); the
    exported script runs nothing of them and the exported run's data.csv is read back by
    ``chainrule evaluate``."""
    file_name = f'a"""\n{PAYLOAD}\n"""\r\n#{PAYLOAD}\n.csv'
    columns = ['wid"th, cm', 'he,"ig""ht\\', f'kind""" + {PAYLOAD} + """']
    classes = ['c"at, big', "do\\g'''", f"'''; {PAYLOAD}; '''"]
    trainer, upload = trained_upload(file_name, columns, classes, epochs=2)
    assert upload.name == file_name and upload.classes == sorted(classes)
    script = tmp_path / "train.py"
    script.write_text(python_script(trainer, upload.name))
    printed = io.StringIO()
    with contextlib.chdir(tmp_path), contextlib.redirect_stdout(printed):
        runpy.run_path(str(script), run_name="__main__")
    assert not (tmp_path / "canary.txt").exists()
    words = printed.getvalue().replace(",", "").split()
    assert float(words[words.index("train") + 2]) == pytest.approx(
        trainer.history[-1]["loss"], rel=1e-6
    )
    run = write_run_folder(trainer, tmp_path / "run", upload.name)
    table = data.read_csv(run / DATA_FILE)
    assert table.feature_names == columns[:2] and table.target_name == columns[2]
    assert table.classes == sorted(classes) and len(table.target) == 30
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert not (tmp_path / "canary.txt").exists()


@pytest.mark.parametrize("row", [0, 7])  # the first row decides whether a target is a class
@pytest.mark.parametrize("where", ["feature", "target"])
@pytest.mark.parametrize("cell", ["Inf", "-inf", "+Infinity", "NaN", "nan", "1e39", "-4e38"])
def test_uploads_with_values_that_are_not_finite_numbers_are_refused(row, where, cell):
    rows = [f"{i},{i % 3},{i * 0.5}" for i in range(30)]
    rows[row] = f"{cell},1,2.5" if where == "feature" else f"1,1,{cell}"
    column = "a" if where == "feature" else "c"
    with pytest.raises(PlaygroundError, match=f"line {row + 2}, column '{column}'"):
        read_upload("f.csv", "a,b,c\n" + "\n".join(rows))


def unit(high: float):
    return st.floats(min_value=0.0, max_value=high)


@given(
    values=st.fixed_dictionaries(
        {
            "dataset": st.sampled_from(["xor", "spirals", "gaussians", "line", "plane", "bumps"]),
            "n": st.integers(20, 40),
            "seed": st.integers(0, 2**31 - 1),
            "optimizer": st.sampled_from(sorted(OPTIMIZERS)),
            "lr": st.floats(min_value=5e-324, max_value=10.0),
            "momentum": unit(0.999),
            "beta1": unit(0.999),
            "beta2": unit(0.9999),
            "alpha": unit(0.9999),
            "rho": unit(1.0),
            "lr_decay": unit(1.0),
            "weight_decay": unit(1.0),
            "l1": unit(10.0),
            "l2": unit(10.0),
            "dropout": unit(0.9),
            "test": st.floats(min_value=0.1, max_value=0.9),
            "hidden": st.lists(st.integers(1, 8), max_size=3),
            "activations": st.sampled_from(["linear", "relu", "gelu", "softplus"]),
        }
    ),
    added=st.lists(st.floats(min_value=-1e4, max_value=1e4), min_size=3, max_size=3),
)
def test_the_script_of_any_accepted_setup_writes_its_values_as_literals(values, added):
    """Settings at the edges of what the server accepts (the smallest float as a learning
    rate, a seed of 2^31 - 1, a point at 1e4 with all its digits): the script makes only the
    calls of its kind, and its numbers read back as the run's."""
    inputs = 1 if values["dataset"] == "line" else 2
    values["points"] = [added[:inputs] + [0 if values["dataset"] in ("xor", "spirals") else 1]]
    if values["dataset"] == "gaussians":
        values["points"][0][-1] = 1
    setup = Setup.from_dict(values)
    trainer = Trainer(setup, build_points(setup))
    tree = ast.parse(python_script(trainer))
    calls = call_names(tree)
    assert calls <= SCRIPT_CALLS | SETUP_CALLS, calls - SCRIPT_CALLS - SETUP_CALLS
    optimizer = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and call_names(node) >= {"optim." + OPTIMIZERS[setup.optimizer][0]}
    )
    keywords = {k.arg: ast.literal_eval(k.value) for k in optimizer.keywords}
    assert keywords["lr"] == setup.lr
    seeds = [
        ast.literal_eval(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and call_names(node) == {"cr.manual_seed"}
    ]
    assert seeds == [setup.seed]
