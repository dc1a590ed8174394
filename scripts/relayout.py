"""Move wdlab's modules into the packages of issue 13 and rewrite every reference to them.

    python scripts/relayout.py [--check] [--diff] [--only optim,kernels,exact,data,shims]
                               [--touched FILE] [--no-ruff]

Run from a repository root. The moves (``git mv``; ``MOVES`` below):

    engine/{rules,registry,schedule}.py  -> optim/              (+ optim/__init__.py)
    engine/kernels.py                    -> engine/kernels/common.py
    engine/fused.py, _fused_kernel.py    -> engine/kernels/triton.py, _triton_kernel.py
    engine/native.py, _native.py, .cpp   -> engine/kernels/native.py, native_build.py, native.cpp
    {ridge,theory,decompose,linf}.py     -> exact/
    data.py, userdata.py                 -> data/synthetic.py, data/tables.py (+ data/__init__.py)
    spec.py, spec_nets.py, presets.py, figure_presets.py: re-export shims, read with ``ast``;
        every reference goes to the defining module, then the shim is deleted

and every reference in src/, tests/, benchmarks/, scripts/, examples/, docs/, README.md and
pyproject.toml is rewritten: imports found with ``ast`` (module level, lazy, TYPE_CHECKING,
relative ones resolved first), ``from pkg import moved_module`` (bound to its old name with
``as``), dotted names in code, strings and comments (``wdlab.ridge.ridge_path``, monkeypatch
targets, ``python -c`` code, ``__init__``'s lazy table), short names in docstrings and prose
(``engine.fused``), file paths (``engine/_cpu_kernel.cpp``), the native build's source lookup
and pyproject's package data. A module that becomes a package (``wdlab.data``,
``wdlab.engine.kernels``) keeps its bare name; ``wdlab.data.X`` goes to ``wdlab.data.synthetic.X``
for the names that module defines. Imports are re-sorted with ``ruff --select I --fix``.

Idempotent: a move already made is skipped, and a second run changes nothing. ``--check``
(and ``--diff``, which implies it) changes nothing, prints what would change and exits 1 when
something would. ``--touched FILE``
writes every path it moved, created, deleted or rewrote (for ``git commit --pathspec-from-file``).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import shutil
import subprocess
import sys
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

#: (group, old path, new path), relative to src/wdlab.
MOVES = [
    ("optim", "engine/rules.py", "optim/rules.py"),
    ("optim", "engine/registry.py", "optim/registry.py"),
    ("optim", "engine/schedule.py", "optim/schedule.py"),
    ("kernels", "engine/kernels.py", "engine/kernels/common.py"),
    ("kernels", "engine/fused.py", "engine/kernels/triton.py"),
    ("kernels", "engine/_fused_kernel.py", "engine/kernels/_triton_kernel.py"),
    ("kernels", "engine/native.py", "engine/kernels/native.py"),
    ("kernels", "_native.py", "engine/kernels/native_build.py"),
    ("kernels", "engine/_cpu_kernel.cpp", "engine/kernels/native.cpp"),
    ("exact", "ridge.py", "exact/ridge.py"),
    ("exact", "theory.py", "exact/theory.py"),
    ("exact", "decompose.py", "exact/decompose.py"),
    ("exact", "linf.py", "exact/linf.py"),
    ("data", "data.py", "data/synthetic.py"),
    ("data", "userdata.py", "data/tables.py"),
]
SHIMS = ["spec.py", "spec_nets.py", "presets.py", "figure_presets.py"]
GROUPS = ("optim", "kernels", "exact", "data", "shims")

#: New packages: path of the __init__ -> (group, docstring, modules whose public names it exports).
PACKAGES = {
    "optim/__init__.py": ("optim", (
        "Update rules, their chains and learning-rate schedules: model-independent, shared by\n"
        "every model family (``wdlab.engine``'s linear models, ``wdlab.nets``). Pure torch."),
        ["optim/rules.py", "optim/registry.py", "optim/schedule.py"]),
    "engine/kernels/__init__.py": ("kernels", (
        "The all-epochs kernels of the linear engine: ``common`` (what they share), ``triton``\n"
        "(CUDA; the jitted kernel in ``_triton_kernel``) and ``native`` (C++ on CPU: the source\n"
        "``native.cpp``, built and cached by ``native_build``). Pure torch."), []),
    "exact/__init__.py": ("exact", (
        "Closed forms and theory: the ridge path (one batched, weighted closed form), AdamW's\n"
        "l-inf limit, ridge's asymptotic risk and the exact error decomposition. Pure\n"
        "torch/numpy."), []),
    "data/__init__.py": ("data", (
        "Data: synthetic linear problems (``synthetic``, pure torch; its names are re-exported\n"
        "here) and user CSV/Parquet tables (``tables``: pandas, imported on its own)."),
        ["data/synthetic.py"]),
}
#: Where references are rewritten (paths relative to the root) and the file endings read.
SCOPE = ["src", "tests", "benchmarks", "scripts", "examples", "docs", "README.md",
         "pyproject.toml"]
TEXT_SUFFIXES = {".py", ".md", ".cpp", ".toml", ".yaml", ".yml", ".txt", ".sh", ".cfg", ".rst",
                 ".json"}
SELF = "scripts/relayout.py"

CHAIN = re.compile(r"(?<![\w.])wdlab(?:\.\w+)+")
SHORT = re.compile(r"(?<![\w.])engine(?:\.\w+)+")


def modname(rel: str) -> str:
    """src/wdlab-relative path -> dotted module name (``data/__init__.py`` -> ``wdlab.data``)."""
    parts = ["wdlab", *Path(rel).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def defined_names(tree: ast.Module) -> list[str]:
    """The public names a module defines (its ``__all__`` when it has one)."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return [e.value for e in node.value.elts]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node.name)
        elif isinstance(node, ast.Assign):
            # ``Tensor = torch.Tensor``: an alias of an imported name, not the module's own
            if isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
                continue
            out += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.append(node.target.id)
    return [n for n in out if not n.startswith("_")]


def all_names(tree: ast.Module) -> set[str]:
    """Every top-level name a module binds (private ones included, imports excluded)."""
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


@dataclass
class Layout:
    """What moves where in this run, and how a reference to an old name resolves."""

    root: Path
    groups: set[str]
    moves: list[tuple[str, str]] = field(default_factory=list)  # pending (old, new) rel paths
    plain: dict[str, str] = field(default_factory=dict)  # old module -> new module
    split: dict[str, str] = field(default_factory=dict)  # old module -> its new leaf module
    split_names: dict[str, set[str]] = field(default_factory=dict)  # old module -> its names
    subpackages: dict[str, set[str]] = field(default_factory=dict)  # new package -> submodules
    shims: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # mod -> name map
    shim_primary: dict[str, str] = field(default_factory=dict)
    shim_files: list[str] = field(default_factory=list)
    shim_skipped: list[str] = field(default_factory=list)
    path_map: dict[str, str] = field(default_factory=dict)  # old rel path -> new rel path
    errors: list[str] = field(default_factory=list)

    @property
    def src(self) -> Path:
        return self.root / "src" / "wdlab"

    def build(self) -> None:
        for group, old, new in MOVES:
            if group not in self.groups:
                continue
            o, n = self.src / old, self.src / new
            if o.exists() and n.exists():
                self.errors.append(f"both {old} and {new} exist: resolve by hand")
                continue
            if not o.exists() and not n.exists():
                self.errors.append(f"neither {old} nor {new} exists")
                continue
            if o.exists():
                self.moves.append((old, new))
            self.path_map[old] = new
            if old.endswith(".py"):
                om, nm = modname(old), modname(new)
                if nm.startswith(om + "."):
                    self.split[om] = nm
                    self.split_names[om] = all_names(ast.parse((o if o.exists() else n)
                                                              .read_text()))
                else:
                    self.plain[om] = nm
                pkg = nm.rpartition(".")[0]
                self.subpackages.setdefault(pkg, set()).add(nm.rpartition(".")[2])
        for pkg in list(self.subpackages):  # modules already in the new packages
            d = self.src / Path(*pkg.split(".")[1:])
            if d.is_dir():
                self.subpackages[pkg] |= {p.stem for p in d.glob("*.py") if p.stem != "__init__"}
                self.subpackages[pkg] |= {p.name for p in d.iterdir()
                                          if (p / "__init__.py").exists()}
        if "shims" in self.groups:
            self.read_shims()

    def read_shims(self) -> None:
        raw = {}
        for rel in SHIMS:
            path = self.src / rel
            if not path.exists():
                continue
            tree = ast.parse(path.read_text())
            why = shim_problem(tree)
            if why:
                self.shim_skipped.append(f"{rel}: not a shim ({why}); left in place")
                continue
            names = {}
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                    if node.level:
                        why = "relative import"
                        break
                    for a in node.names:
                        names[a.asname or a.name] = (node.module, a.name)
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        names[a.asname or a.name.partition(".")[0]] = (a.name, "")
            if why:
                self.shim_skipped.append(f"{rel}: not a shim ({why}); left in place")
                continue
            raw[modname(rel)] = names
            self.shim_files.append(rel)
        self.shims = raw
        for mod, names in raw.items():  # resolve shims of shims and moved targets
            resolved = {}
            for local, (m, n) in names.items():
                if not n:  # ``import x`` inside a shim: re-exports a module
                    resolved[local] = (self.module(m), "")
                    continue
                resolved[local] = self.name(m, n)
            raw[mod] = resolved
            counts = Counter(m for m, n in resolved.values() if n)
            self.shim_primary[mod] = counts.most_common(1)[0][0] if counts else ""

    # -- resolution -------------------------------------------------------------------------

    def module(self, mod: str) -> str:
        """The new name of a module imported as ``import mod`` (itself when it did not move)."""
        if mod in self.plain:
            return self.plain[mod]
        if mod in self.split:
            return self.split[mod]
        for old, new in self.plain.items():  # a package that moved: old.sub -> new.sub
            if mod.startswith(old + "."):
                return new + mod[len(old):]
        return mod

    def is_module(self, mod: str) -> bool:
        return mod in self.plain or mod in self.split or mod in self.shims

    def name(self, mod: str, name: str, depth: int = 0) -> tuple[str, str]:
        """``from mod import name`` -> (new module, new name). A module imported from its
        package (``from wdlab.engine import native``) gives (new parent, new leaf)."""
        if depth > 8:
            raise ValueError(f"shim cycle at {mod}.{name}")
        if mod in self.shims:
            if name not in self.shims[mod]:
                raise KeyError(f"{mod} does not re-export {name}")
            m, n = self.shims[mod][name]
            if not n:
                return tuple(m.rpartition(".")[::2])
            return self.name(m, n, depth + 1)
        full = f"{mod}.{name}"
        if full in self.plain or full in self.split:
            new = self.module(full)
            return new.rpartition(".")[0], new.rpartition(".")[2]
        if mod in self.split:
            if name in self.subpackages.get(mod, set()):
                return mod, name
            return self.split[mod], name
        return self.module(mod), name


def shim_problem(tree: ast.Module) -> str | None:
    """Why a module is not a pure re-export shim (None when it is)."""
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in ("__all__", "__doc__") for t in node.targets):
            continue
        return f"line {node.lineno}: {type(node).__name__}"
    return None


# -- rewriting one file ---------------------------------------------------------------------


class Source:
    """A file's text with byte-column <-> character-offset conversion for ast positions."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:col].decode(errors="replace"))


@dataclass
class Counts:
    imports: int = 0
    lazy: int = 0
    dotted: int = 0
    short: int = 0
    paths: int = 0
    attrs: int = 0
    special: int = 0

    def total(self) -> int:
        return (self.imports + self.dotted + self.short + self.paths + self.attrs
                + self.special)


class Rewriter:
    def __init__(self, layout: Layout):
        self.lay = layout
        self.unresolved: list[str] = []
        self.attr_edits = 0

    # -- imports (ast) --

    def package_of(self, rel: str) -> str:
        mod = modname(rel[len("src/"):].removeprefix("wdlab/")) if rel.startswith(
            "src/wdlab/") else ""
        return mod if rel.endswith("__init__.py") else mod.rpartition(".")[0]

    def rewrite_imports(self, text: str, rel: str, counts: Counts) -> str:
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            self.unresolved.append(f"{rel}: not parsed ({exc.msg}, line {exc.lineno}); "
                                   "only its text was rewritten")
            return text
        src = Source(text)
        edits = []  # (start, end, new text)
        bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            (a.asname or a.name).partition(".")[0] for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        scopes = scope_map(tree)
        moved = rel.startswith("src/wdlab/") and rel[len("src/wdlab/"):] in self.lay.path_map
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            try:
                new = self.import_node(node, rel, tree, scopes, bound, edits, src, moved)
            except (KeyError, ValueError) as exc:
                self.unresolved.append(f"{rel}:{node.lineno}: {exc}")
                continue
            if new is None:
                continue
            start = src.offset(node.lineno, node.col_offset)
            end = src.offset(node.end_lineno, node.end_col_offset)
            old = text[start:end]
            inside = re.findall(r"#\s*noqa[^\n]*", old)
            after = re.findall(r"#\s*noqa[^\n]*", src.lines[node.end_lineno - 1][
                end - src.starts[node.end_lineno - 1]:])
            noqa = (inside or after or [""])[0]
            lead = src.lines[node.lineno - 1][:start - src.starts[node.lineno - 1]]
            sep = "; " if lead.strip() else "\n" + lead
            stmts = [with_noqa(s, noqa if (inside or i < len(new) - 1) else "").replace(
                "\n", "\n" + (lead if not lead.strip() else "")) for i, s in enumerate(new)]
            body = sep.join(stmts)
            edits.append((start, end, body))
            counts.imports += 1
            if scopes.get(id(node)) is not tree:
                counts.lazy += 1
        for node in ast.walk(tree):  # lazy tables: {"name": "wdlab.module", ...}
            if isinstance(node, ast.Dict):
                self.lazy_table(node, src, edits, counts, rel)
        counts.attrs, self.attr_edits = self.attr_edits, 0
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        return text

    def import_node(self, node, rel, tree, scopes, bound, edits, src, moved):
        """The statements replacing an import, or None when it stays as it is."""
        lay = self.lay
        if isinstance(node, ast.Import):
            out, changed = [], False
            for a in node.names:
                if a.name in lay.shims:
                    stmts = self.shim_module_import(node, a, tree, scopes, bound, edits, src,
                                                    rel)
                    out += stmts
                    changed = True
                    continue
                new = lay.module(a.name)
                changed |= new != a.name
                out.append(f"import {new}" + (f" as {a.asname}" if a.asname else ""))
            return out if changed else None
        if node.module == "__future__":
            return None
        module = node.module or ""
        if node.level:  # relative: resolve against the file's (old) package
            base = self.package_of(rel).split(".")
            base = base[:len(base) - node.level + 1]
            module = ".".join(base + ([module] if module else []))
        if not module.startswith("wdlab"):
            return None
        groups: dict[str, list[str]] = defaultdict(list)
        changed = bool(node.level) and moved
        for a in node.names:
            if a.name == "*":
                if module in lay.shims or lay.module(module) != module:
                    raise ValueError(f"star import from {module}: rewrite by hand")
                groups[module].append("*")
                continue
            full = f"{module}.{a.name}"
            if full in lay.shims:  # ``from wdlab import spec``: a shim as a module object
                local = a.asname or a.name
                alias = ast.alias(name=full, asname=local)
                for stmt in self.shim_module_import(node, alias, tree, scopes, bound, edits,
                                                    src, rel):
                    groups[stmt].append("")
                changed = True
                continue
            m, n = lay.name(module, a.name)
            local = a.asname or a.name
            changed |= (m, n) != (module, a.name)
            groups[m].append(n if local == n else f"{n} as {local}")
        if not changed and not (node.level and any(
                lay.module(m) != m for m in groups)):
            return None
        out = []
        for m, names in groups.items():
            if names == [""]:
                out.append(m)
                continue
            names = [n for n in names if n]
            one = f"from {m} import {', '.join(names)}"
            out.append(one if len(one) <= 99 else
                       f"from {m} import (\n" + "".join(f"    {n},\n" for n in names) + ")")
        return out

    def lazy_table(self, node: ast.Dict, src: Source, edits: list, counts: Counts,
                   rel: str) -> None:
        """``"name": "wdlab.old"`` entries of a PEP 562 table: the module defining ``name``."""
        lay = self.lay
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)
                    and isinstance(value, ast.Constant) and isinstance(value.value, str)):
                continue
            mod = value.value
            if not (lay.is_module(mod) and key.value.isidentifier()):
                continue
            try:
                m, n = lay.name(mod, key.value)
            except KeyError as exc:
                self.unresolved.append(f"{rel}:{value.lineno}: {exc}")
                continue
            if n != key.value:
                self.unresolved.append(f"{rel}:{value.lineno}: {key.value!r} is {m}.{n}: "
                                       "the table needs a rename")
                continue
            if m != mod:
                start = src.offset(value.lineno, value.col_offset)
                end = src.offset(value.end_lineno, value.end_col_offset)
                quote = src.text[start]
                edits.append((start, end, f"{quote}{m}{quote}"))
                counts.dotted += 1

    def shim_module_import(self, node, alias, tree, scopes, bound, edits, src, rel):
        """A shim imported as a module object (``from wdlab import spec``,
        ``import wdlab.spec [as s]``): import the defining modules and point each
        ``local.X`` at the one that defines X."""
        lay = self.lay
        shim = alias.name
        if alias.asname is None:  # ``import wdlab.spec``: uses are dotted ``wdlab.spec.X``
            attrs = set(re.findall(re.escape(shim) + r"\.(\w+)", src.text))
            mods = sorted({lay.name(shim, x)[0] for x in attrs} or {lay.shim_primary[shim]})
            return [f"import {m}" for m in mods]
        local = alias.asname
        scope = scopes.get(id(node), tree)
        uses, bare = [], 0
        nodes = list(walk_unshadowed(scope, local))
        for n in nodes:
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) \
                    and n.value.id == local:
                uses.append(n)
        attr_values = {id(u.value) for u in uses}
        for n in nodes:
            if isinstance(n, ast.Name) and n.id == local and id(n) not in attr_values:
                bare += 1
        targets = {u.attr: lay.name(shim, u.attr) for u in uses}
        mods = sorted({m for m, _ in targets.values()})
        renamed = any(n != x for x, (m, n) in targets.items())
        if len(mods) <= 1 and not renamed:
            m = mods[0] if mods else lay.shim_primary[shim]
            parent, leaf = m.rpartition(".")[::2]
            return [f"from {parent} import {leaf}" + (f" as {local}" if leaf != local else "")]
        if bare:
            raise ValueError(f"{local} (= {shim}) is used as a value and its names come from "
                             f"{', '.join(mods)}: rewrite by hand")
        aliases = {}
        for m in mods:
            leaf = m.rpartition(".")[2]
            name = leaf if leaf not in bound else f"{local}_{leaf}"
            aliases[m] = name
            bound.add(name)
        for u in uses:
            m, n = targets[u.attr]
            start = src.offset(u.lineno, u.col_offset)
            end = src.offset(u.end_lineno, u.end_col_offset)
            edits.append((start, end, f"{aliases[m]}.{n}"))
            self.attr_edits += 1
        out = []
        for m, name in aliases.items():
            parent, leaf = m.rpartition(".")[::2]
            out.append(f"from {parent} import {leaf}" + (f" as {name}" if name != leaf else ""))
        return out

    # -- text --

    def chain(self, match: re.Match, counts: Counts, rel: str) -> str:
        """``wdlab.a.b.c`` -> its new spelling (the longest old module that prefixes it)."""
        lay = self.lay
        s = match.group(0)
        parts = s.split(".")
        for i in range(len(parts), 1, -1):
            head, rest = ".".join(parts[:i]), parts[i:]
            if head in lay.plain:
                counts.dotted += 1
                return ".".join([lay.plain[head], *rest])
            if head in lay.split:
                if not rest or rest[0] in lay.subpackages.get(head, set()):
                    return s
                if rest[0] in lay.split_names[head]:
                    counts.dotted += 1
                    return ".".join([lay.split[head], *rest])
                self.unresolved.append(f"{rel}: {s}: {rest[0]} is not defined in {head}")
                return s
            if head in lay.shims:
                if not rest:
                    counts.dotted += 1
                    return lay.shim_primary[head] or s
                try:
                    m, n = lay.name(head, rest[0])
                except KeyError as exc:
                    self.unresolved.append(f"{rel}: {s}: {exc}")
                    return s
                counts.dotted += 1
                return ".".join([m, n, *rest[1:]]) if n else ".".join([m, *rest[1:]])
        return s

    def short(self, match: re.Match, counts: Counts) -> str:
        """``engine.fused.run`` in prose -> ``engine.kernels.triton.run``."""
        lay = self.lay
        s = match.group(0)
        full = "wdlab." + s
        parts = full.split(".")
        for i in range(len(parts), 2, -1):
            head, rest = ".".join(parts[:i]), parts[i:]
            new = None
            if head in lay.plain:
                new = ".".join([lay.plain[head], *rest])
            elif head in lay.split and rest and rest[0] in lay.split_names[head] \
                    and rest[0] not in lay.subpackages.get(head, set()):
                new = ".".join([lay.split[head], *rest])
            if new is not None:
                counts.short += 1
                return new.removeprefix("wdlab.")
        return s

    def paths(self, text: str, counts: Counts) -> str:
        for old, new in sorted(self.lay.path_map.items(), key=lambda kv: -len(kv[0])):
            pats = [(rf"(?<![\w.-])wdlab/{re.escape(old)}\b", f"wdlab/{new}")]
            if old.startswith("engine/"):
                pats.append((rf"(?<![\w./-]){re.escape(old)}\b", new))
            base, nbase = Path(old).name, Path(new).name
            if base.startswith("_"):  # a private sibling: named by its new file name
                pats.append((rf"(?<![\w./-]){re.escape(base)}\b", nbase))
            elif base in ("fused.py", "kernels.py", "userdata.py"):
                rel_new = new.removeprefix("engine/") if old.startswith("engine/") else new
                pats.append((rf"(?<![\w./-]){re.escape(base)}\b", rel_new))
            for pat, rep in pats:
                text, n = re.subn(pat, rep, text)
                counts.paths += n
        return text

    def text_regions(self, text: str, rel: str):
        """(start, end) of the strings and comments of a Python file (all of any other file)."""
        if not rel.endswith(".py"):
            return [(0, len(text))]
        src = Source(text)
        out = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(text).readline):
                if tok.type in (tokenize.STRING, tokenize.COMMENT):
                    (l0, c0), (l1, c1) = tok.start, tok.end
                    out.append((src.starts[l0 - 1] + c0, src.starts[l1 - 1] + c1))
        except (tokenize.TokenError, SyntaxError):
            return [(0, len(text))]
        return out

    def rewrite_text(self, text: str, rel: str, counts: Counts) -> str:
        text = CHAIN.sub(lambda m: self.chain(m, counts, rel), text)
        pieces, last = [], 0
        for start, end in self.text_regions(text, rel):
            pieces.append(text[last:start])
            seg = SHORT.sub(lambda m: self.short(m, counts), text[start:end])
            pieces.append(self.paths(seg, counts))
            last = end
        pieces.append(text[last:])
        return "".join(pieces)

    def special(self, text: str, rel: str, counts: Counts) -> str:
        """The native build's source lookup and pyproject's package data."""
        if "kernels" in self.lay.groups:
            if rel in ("src/wdlab/_native.py", "src/wdlab/engine/kernels/native_build.py"):
                old = 'Path(__file__).resolve().parent / "engine" / "_cpu_kernel.cpp"'
                if old in text:
                    text = text.replace(old, 'Path(__file__).resolve().with_name("native.cpp")')
                    counts.special += 1
            if rel == "pyproject.toml":
                new, n = re.subn(r'"engine/\*\.cpp"', '"engine/kernels/*.cpp"', text)
                text, counts.special = new, counts.special + n
        return text

    def file(self, text: str, rel: str) -> tuple[str, Counts]:
        counts = Counts()
        if rel.endswith(".py"):
            text = self.rewrite_imports(text, rel, counts)
        text = self.special(text, rel, counts)
        text = self.rewrite_text(text, rel, counts)
        return text, counts


def with_noqa(stmt: str, noqa: str) -> str:
    """An import statement with a ``# noqa`` comment where ruff reads it."""
    if not noqa:
        return stmt
    if stmt.endswith(")") and "(\n" in stmt:
        return stmt.replace("(\n", f"(  {noqa}\n", 1)
    return f"{stmt}  {noqa}"


def walk_unshadowed(scope: ast.AST, name: str):
    """The nodes of a scope, less the nested functions and classes that bind ``name`` again
    (a parameter or an assignment: there it is another object)."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            args = node.args if not isinstance(node, ast.ClassDef) else None
            params = {a.arg for a in (args.posonlyargs + args.args + args.kwonlyargs
                                      + [x for x in (args.vararg, args.kwarg) if x])} \
                if args else set()
            stores = {n.id for n in ast.walk(node)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            if name in params or name in stores:
                continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def scope_map(tree: ast.Module) -> dict[int, ast.AST]:
    """id(node) -> the function (or the module) whose body holds it."""
    out = {}

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            out[id(child)] = scope
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda)) else scope
            visit(child, inner)

    visit(tree, tree)
    return out


# -- the run --------------------------------------------------------------------------------


def tracked_files(root: Path) -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "--", *SCOPE], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = [str(p.relative_to(root)) for s in SCOPE for p in
               ([root / s] if (root / s).is_file() else (root / s).rglob("*"))]
    return sorted({f for f in out if f and (root / f).is_file()
                   and (Path(f).suffix in TEXT_SUFFIXES or f in ("pyproject.toml",))
                   and f != SELF})


def package_init(lay: Layout, rel: str) -> str | None:
    group, doc, exports = PACKAGES[rel]
    if group not in lay.groups or (lay.src / rel).exists():
        return None
    if not any(new.startswith(str(Path(rel).parent) + "/") for _, new in lay.moves):
        return None
    lines = [f'"""{doc}"""']
    names = []
    for mod_rel in exports:
        old = next(o for o, n in lay.path_map.items() if n == mod_rel)
        path = lay.src / (old if (lay.src / old).exists() else mod_rel)
        own = defined_names(ast.parse(path.read_text()))
        names += own
        if own:
            body = ", ".join(own)
            stmt = f"from {modname(mod_rel)} import {body}"
            lines.append(stmt if len(stmt) <= 99 else f"from {modname(mod_rel)} import (\n"
                         + "".join(f"    {n},\n" for n in own) + ")")
    if names:
        lines.insert(1, "")
        lines.append("\n__all__ = [\n" + "".join(f'    "{n}",\n' for n in sorted(names)) + "]")
    return "\n".join(lines) + "\n"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a run would")
    ap.add_argument("--diff", action="store_true",
                    help="print a unified diff of each rewrite (implies --check: changes nothing)")
    ap.add_argument("--only", default=",".join(GROUPS), help=f"groups, of {', '.join(GROUPS)}")
    ap.add_argument("--touched", help="write every path moved, created, deleted or rewritten")
    ap.add_argument("--no-ruff", action="store_true", help="do not re-sort imports with ruff")
    ap.add_argument("--root", default=".", help="the repository root")
    args = ap.parse_args(argv)
    args.check = args.check or args.diff  # a diff is a dry run: it never applies
    root = Path(args.root).resolve()
    groups = set(args.only.split(","))
    if not groups <= set(GROUPS) or not (root / "src" / "wdlab").is_dir():
        ap.error(f"--only takes {', '.join(GROUPS)}; run from a repository root")
    lay = Layout(root, groups)
    lay.build()
    if lay.errors:
        for e in lay.errors:
            print(f"error: {e}", file=sys.stderr)
        return 2
    rw = Rewriter(lay)
    moved_to = {f"src/wdlab/{o}": f"src/wdlab/{n}" for o, n in lay.moves}
    shim_paths = {f"src/wdlab/{s}" for s in lay.shim_files}
    results, totals = {}, Counts()
    per_file = {}
    for rel in tracked_files(root):
        if rel in shim_paths:
            continue
        text = (root / rel).read_text(errors="surrogateescape")
        new, counts = rw.file(text, rel)
        dest = moved_to.get(rel, rel)
        if new != text or dest != rel:
            results[rel] = (dest, text, new)
        if counts.total():
            per_file[dest] = counts
            for k in vars(totals):
                setattr(totals, k, getattr(totals, k) + getattr(counts, k))
    inits = {rel: body for rel in PACKAGES if (body := package_init(lay, rel))}
    leftovers = scan_leftovers(lay, {d: n for _, (d, _, n) in results.items()}, root,
                               set(results) | shim_paths)

    print(f"relayout ({'check' if args.check else 'apply'}; groups {', '.join(sorted(groups))})")
    print(f"moves ({len(lay.moves)}, git mv):")
    for o, n in lay.moves:
        print(f"  src/wdlab/{o} -> src/wdlab/{n}")
    for rel, body in inits.items():
        exported = body.count('",\n')
        print(f"  new src/wdlab/{rel}" + (f" (exports {exported} names)" if exported else ""))
    for rel in lay.shim_files:
        mods = sorted({m for m, _ in lay.shims[modname(rel)].values()})
        print(f"  shim src/wdlab/{rel} removed: {len(lay.shims[modname(rel)])} names -> "
              f"{', '.join(mods)}")
    for s in lay.shim_skipped:
        print(f"  skipped {s}")
    changed = [r for r, (d, t, n) in results.items() if n != t]
    print(f"rewrites: {len(changed)} files, {totals.total()} references: imports "
          f"{totals.imports} ({totals.lazy} lazy), shim attributes {totals.attrs}, dotted names "
          f"{totals.dotted}, short names {totals.short}, paths {totals.paths}, build/package "
          f"data {totals.special}")
    for dest, c in sorted(per_file.items()):
        print(f"  {dest}: {c.total()}")
    for u in rw.unresolved + leftovers:
        print(f"unresolved: {u}")
    if args.diff:
        for rel, (dest, text, new) in results.items():
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), new.splitlines(keepends=True),
                f"a/{rel}", f"b/{dest}"))
    pending = bool(results or inits or lay.shim_files)
    if args.check:
        print("nothing to do" if not pending else "would change: run without --check")
        return 1 if pending else 0
    if rw.unresolved or leftovers:
        if lay.shim_files:
            print("shims kept: some references could not be rewritten", file=sys.stderr)
            lay.shim_files = []
    touched = set()
    for o, n in lay.moves:
        (lay.src / n).parent.mkdir(parents=True, exist_ok=True)
        try:
            git(root, "mv", f"src/wdlab/{o}", f"src/wdlab/{n}")
        except (OSError, subprocess.CalledProcessError):
            shutil.move(lay.src / o, lay.src / n)
        touched |= {f"src/wdlab/{o}", f"src/wdlab/{n}"}
    for dest, text, new in results.values():
        if new != text:
            (root / dest).write_text(new, errors="surrogateescape")
        touched.add(dest)
    for rel, body in inits.items():
        (lay.src / rel).write_text(body)
        touched.add(f"src/wdlab/{rel}")
        try:
            git(root, "add", "--", f"src/wdlab/{rel}")
        except (OSError, subprocess.CalledProcessError):
            pass
    for rel in lay.shim_files:
        try:
            git(root, "rm", "-q", "--", f"src/wdlab/{rel}")
        except (OSError, subprocess.CalledProcessError):
            (lay.src / rel).unlink()
        touched.add(f"src/wdlab/{rel}")
    py = sorted(t for t in touched if t.endswith(".py") and (root / t).exists())
    if py and not args.no_ruff and shutil.which("ruff"):
        subprocess.run(["ruff", "check", "--select", "I", "--fix", "--quiet", *py], cwd=root,
                       capture_output=True)
    if args.touched:
        Path(args.touched).write_text("".join(f"{t}\n" for t in sorted(touched)))
    print(f"done: {len(touched)} paths touched")
    return 0


def scan_leftovers(lay: Layout, new_texts: dict[str, str], root: Path,
                   skip: set[str]) -> list[str]:
    """References to an old name that the rewrite left (in the rewritten or untouched files)."""
    out = []
    old_mods = set(lay.plain) | set(lay.shims)
    leaf_pat = {}
    for m in old_mods | set(lay.split):
        parent, leaf = m.rpartition(".")[::2]
        leaf_pat[m] = re.compile(rf"from {re.escape(parent)} import [^\n]*\b{leaf}\b")
    texts = dict(new_texts)
    for rel in tracked_files(root):
        if rel not in skip:
            texts.setdefault(rel, (root / rel).read_text(errors="surrogateescape"))
    for rel, text in texts.items():
        for m in CHAIN.finditer(text):
            parts = m.group(0).split(".")
            for i in range(len(parts), 1, -1):
                if ".".join(parts[:i]) in old_mods:
                    line = text.count("\n", 0, m.start()) + 1
                    out.append(f"{rel}:{line}: {m.group(0)}")
                    break
        if rel.endswith(".py"):
            for m, pat in leaf_pat.items():
                if m in lay.split:  # ``from wdlab import data``: the package, legitimately
                    continue
                for hit in pat.finditer(text):
                    line = text.count("\n", 0, hit.start()) + 1
                    out.append(f"{rel}:{line}: imports {m}")
    return out


if __name__ == "__main__":
    sys.exit(main())
