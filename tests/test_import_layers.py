"""Import layering: the registry does not import the families, the families do not import the registry, the CLI
or the training loop (issue 14's "no import circle")."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TFVR = Path(REPO) / "tfvr"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth (function-level imports count too)."""
    out = []
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]  # `from tfvr import registry`
    return out


def _hits(files, forbidden):
    bad = []
    for f in files:
        for line, mod in _imports(f):
            if any(mod == p or mod.startswith(p + ".") for p in forbidden):
                bad.append(f"{f.relative_to(REPO)}:{line}: {mod}")
    return bad


def test_families_import_neither_the_registry_nor_the_cli_nor_the_training_loop():
    files = sorted((TFVR / "models").rglob("*.py"))
    assert len(files) > 20
    assert _hits(files, ("tfvr.registry", "tfvr.cli", "tfvr.training.loop", "tfvr.training.app")) == []


def test_registry_and_family_record_import_no_family():
    assert _hits([TFVR / "family.py"], ("tfvr.models", "tfvr.registry")) == []
    hits = _hits([TFVR / "registry.py"], ("tfvr.models",))
    # the one edge registry -> models: reading the built-in list, inside `_load_builtin` (never at import)
    assert [h.split(": ")[1] for h in hits] == ["tfvr.models", "tfvr.models.builtin_families"], hits


def test_importing_the_registry_imports_no_family_and_no_tensorflow():
    code = ("import sys, tfvr.registry as r\n"
            "print(sorted(m for m in sys.modules if m.startswith('tfvr.models')), 'tensorflow' in sys.modules)\n"
            "r.list_tasks(); r.converter_names(); r.model_class_names()\n"  # records only: still no TensorFlow
            "print('tensorflow' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["[] False", "False"], r.stdout


def test_generic_train_entry_point_knows_only_registered_tasks():
    r = subprocess.run([sys.executable, "-m", "tfvr.training", "os", "--workdir=x"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("python -m tfvr.training: error:"), r.stderr
    assert "unknown task 'os'" in r.stderr and "edvr" in r.stderr and len(r.stderr.strip().splitlines()) == 1
