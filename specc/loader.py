"""Files to one :class:`~specc.ir.Spec`: reading, imports, merging.

An ``import "lib/x.rbr"`` brings that file's propositions and derived propositions
into scope (paths are relative to the importing file). Cycles and missing files
are diagnostics at the import statement; a file imported along two paths is read
once. Every file (the root spec, its imports, a ``file(...)`` template) is read
through :func:`specc.confine.read_confined`: imports and templates only from inside
the root spec's folder or an ``allow_paths`` folder (E014 otherwise), regular files
only, size-capped.

A root file is one of three kinds (:attr:`LoadResult.kind`):

* a **policy** starts with a ``policy`` header;
* a **library** has no header and holds propositions, derived propositions and
  imports; with ``alone=True`` it is loaded as a :class:`~specc.ir.Spec` with
  ``library=True`` so that it can be checked by itself (it is never compiled);
* a **test file** has no header, holds ``test`` blocks and imports the one policy
  they test; with ``alone=True`` it loads as that policy with the file's tests.

Without ``alone`` (compile, build) a file without a header is E011.

>>> result = load_spec("policies/minimal.rbr")    # doctest: +SKIP
>>> result.spec.name, result.ok                   # doctest: +SKIP
('minimal', True)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from specc import ir
from specc.confine import Refused, Roots, check_inside, read_confined
from specc.errors import Diagnostic, SpecError
from specc.parser import MAX_SOURCE_BYTES, parse_source

__all__ = ["LoadResult", "display_path", "load_spec", "parse_file", "read_source"]


@dataclass
class LoadResult:
    """The merged spec (None when the root could not be parsed), every diagnostic
    so far, and the text of every file read (for rendering carets)."""

    spec: ir.Spec | None
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)
    files: dict[str, ir.SourceFile] = field(default_factory=dict)
    kind: Literal["policy", "library", "tests"] = "policy"

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.severity == "error" for d in self.diagnostics)


def display_path(path: Path) -> str:
    """A path as the user will recognise it: relative to the cwd when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


ALLOW_PATH_HINT = (
    "specc reads imports and templates only inside the folder of the spec it checks; "
    "move the file there, or allow its folder with --allow-path DIR (allow_paths= in the API)"
)


def read_source(
    path: Path,
    shown: str,
    at: ir.Span | None = None,
    roots: Roots | None = None,
) -> tuple[str | None, list[Diagnostic]]:
    """Read a spec file as UTF-8 text through the confined reader (within ``roots``,
    by default the file's own folder), turning every failure into a diagnostic.
    ``at`` is the statement that names the file (None for the root spec)."""
    where = at or ir.Span.unknown(shown)
    try:
        _, data = read_confined(path, roots or Roots.for_spec(path), MAX_SOURCE_BYTES, shown)
    except Refused as exc:
        return None, [_refused(exc, path, shown, where, at is not None)]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        span = ir.Span.model_construct(
            file=shown, line=line, col=col, end_line=line, end_col=col + 1
        )
        return None, [
            Diagnostic(
                "E003",
                f"{shown} is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                span,
                "is this a text file? .rbr files are UTF-8 text",
            )
        ]
    return text, []


def _refused(exc: Refused, path: Path, shown: str, where: ir.Span, named: bool) -> Diagnostic:
    """The diagnostic for a file the confined reader refused (never its contents).
    ``named``: the file is named by an import (else it is the root spec)."""
    if exc.reason == "outside":
        return Diagnostic("E014", str(exc), where, ALLOW_PATH_HINT)
    if exc.reason == "missing":
        return Diagnostic(
            "E005" if named else "E004",
            f"file not found: {shown}",
            where,
            _nearby_hint(path, named),
        )
    if exc.reason == "directory":
        hint = None if named else f"name the files, e.g. `{shown.rstrip('/')}/*.rbr`"
        return Diagnostic("E004", f"{shown} is a directory, not a .rbr file", where, hint)
    if exc.reason == "special":
        return Diagnostic("E004", str(exc), where, "specc reads only regular files")
    if exc.reason == "too-large":
        return Diagnostic(
            "E004",
            f"{shown} is {exc.size / 1e6:.1f} MB; specc reads spec files up to "
            f"{MAX_SOURCE_BYTES // (1024 * 1024)} MB",
            where,
            "split the policy into files joined with `import`",
        )
    return Diagnostic("E004", str(exc), where)


def _import_path(base: Path, item: ir.Import) -> Path | Diagnostic:
    """An import's path joined to its file's folder (symlinks not yet resolved: the
    confined reader resolves and checks them), or why it cannot be."""
    try:
        if "\0" in item.path or not item.path.strip():
            raise ValueError("empty path or NUL character")
        return Path(os.path.abspath(base / item.path))
    except (OSError, ValueError, RuntimeError) as exc:
        return Diagnostic(
            "E005",
            f"invalid import path {item.path!r} ({exc})",
            item.span,
            'write a path relative to this file, such as "lib/common.rbr"',
        )


def _nearby_hint(path: Path, named: bool = True) -> str | None:
    """``named``: the path is an import's (else a file named on the command line)."""
    parent = path.parent
    if not parent.is_dir():
        return f"the folder {display_path(parent)} does not exist"
    import difflib

    names = [p.name for p in parent.iterdir() if p.suffix == ".rbr"]
    match = difflib.get_close_matches(path.name, names, n=1)
    if match:
        return f"did you mean '{match[0]}'?"
    if not named:
        return "check the path (relative paths start in the current folder)"
    return "paths in `import` are relative to the importing file"


class _Loader:
    def __init__(self, roots: Roots) -> None:
        self.roots = roots
        self.result = LoadResult(spec=None, diagnostics=[])
        self.parsed: dict[Path, ir.SourceFile | None] = {}
        #: What each file exports, imports included, once it is known: a file reached
        #: along many import paths (a diamond, or 40 files each importing the next
        #: two: 2**40 paths) is followed once.
        self.exported: dict[Path, tuple[list[ir.Proposition], list[ir.Derived]]] = {}

    def parse(self, path: Path, at: ir.Span | None) -> ir.SourceFile | None:
        """Read and parse a resolved path once. A refused file is never read, so
        nothing of it reaches ``sources`` or a diagnostic."""
        if path in self.parsed:
            return self.parsed[path]
        shown = display_path(path)
        text, diags = read_source(path, shown, at, self.roots)
        self.result.diagnostics.extend(diags)
        source: ir.SourceFile | None = None
        if text is not None:
            self.result.sources[shown] = text
            parsed, diags = parse_source(text, shown)
            self.result.diagnostics.extend(diags)
            # A syntax error leaves an empty file; that is still "parsed".
            source = parsed
            self.result.files[shown] = parsed
        self.parsed[path] = source
        return source

    def follow_imports(
        self, path: Path, source: ir.SourceFile, chain: tuple[Path, ...]
    ) -> tuple[list[ir.Proposition], list[ir.Derived]]:
        """Everything the imports of ``source`` (read from ``path``) bring in."""
        props: list[ir.Proposition] = []
        derived: list[ir.Derived] = []
        for item in source.items:
            if not isinstance(item, ir.Import):
                continue
            real = self.resolve(path, item)
            if real is None:
                continue
            sub_p, sub_d = self.library(real, item.span, chain)
            props.extend(sub_p)
            derived.extend(sub_d)
        # Each definition once, however many imports reach it (_merge would drop the
        # repeats anyway; keeping them made the lists grow along every path).
        return _unique(props), _unique(derived)

    def resolve(self, path: Path, item: ir.Import) -> Path | None:
        """The file an ``import`` in ``path`` names, checked to be inside the roots;
        None after a diagnostic."""
        target = _import_path(path.parent, item)
        if isinstance(target, Diagnostic):
            self.result.diagnostics.append(target)
            return None
        try:  # checked here, where the path as written is known
            return check_inside(target, self.roots, f'"{item.path}"')
        except Refused as exc:
            self.result.diagnostics.append(_refused(exc, target, item.path, item.span, True))
            return None

    def library(
        self, path: Path, at: ir.Span, chain: tuple[Path, ...]
    ) -> tuple[list[ir.Proposition], list[ir.Derived]]:
        """The propositions and derived propositions a file exports, imports included."""
        if path in chain:
            cycle = " -> ".join(display_path(p) for p in (*chain[chain.index(path) :], path))
            self.result.diagnostics.append(
                Diagnostic("E006", f"import cycle: {cycle}", at, "remove one of these imports")
            )
            return [], []
        if path in self.exported:
            return self.exported[path]
        source = self.parse(path, at)
        if source is None:
            return [], []
        props, derived = self.follow_imports(path, source, (*chain, path))
        # Stable across machines and working directories: relative to its root.
        shown = self.roots.relative(path)
        for item in source.items:
            if isinstance(item, ir.Proposition):
                props.append(item.model_copy(update={"source": shown}))
            elif isinstance(item, ir.Derived):
                derived.append(item.model_copy(update={"source": shown}))
            elif len(chain) > 0 and not isinstance(item, (ir.Import, ir.PolicyHeader)):
                kind = type(item).__name__
                self.result.diagnostics.append(
                    Diagnostic(
                        "W006",
                        f"{_ITEM_WORDS.get(kind, kind)} in an imported file is ignored",
                        item.span,
                        "imports bring in propositions and derived propositions only",
                        severity="warning",
                    )
                )
        self.exported[path] = (props, derived)
        return props, derived


_Item = TypeVar("_Item", ir.Proposition, ir.Derived)


def _unique(items: list[_Item]) -> list[_Item]:
    """``items`` without repeats of one definition (the same span), in order."""
    seen: set[ir.Span] = set()
    out = []
    for item in items:
        if item.span not in seen:
            seen.add(item.span)
            out.append(item)
    return out


_ITEM_WORDS = {
    "GraderSettings": "a grader block",
    "TiersBlock": "a tiers block",
    "RewardSettings": "a reward block",
    "ResponseType": "a response type",
    "Constraint": "a constraint",
    "SpecTest": "a test",
}

_NEEDS_HEADER = (
    ir.GraderSettings,
    ir.TiersBlock,
    ir.RewardSettings,
    ir.ResponseType,
    ir.Constraint,
)
_START = 'start the file with: policy "my-policy" version "1.0.0"'


def _library_ok(root: ir.SourceFile, alone: bool, diagnostics: list[Diagnostic]) -> bool:
    """Whether a file without a header is accepted as a library; if not, E011 at the
    first item that needs a header (or at the first item when libraries are not
    accepted here), or for an empty file."""
    if not root.items:
        if not any(d.severity == "error" for d in diagnostics):
            diagnostics.append(Diagnostic("E011", "the file is empty", root.span, _START))
        return False
    if not alone:
        has_tests = any(isinstance(i, ir.SpecTest) for i in root.items)
        hint = _START
        if has_tests:
            hint += "; a file of tests runs with `specc test FILE`"
        elif not any(isinstance(i, _NEEDS_HEADER) for i in root.items):
            hint += "; a library (propositions only) is checked with `specc check FILE`"
        diagnostics.append(
            Diagnostic("E011", "this file has no policy header", root.items[0].span, hint)
        )
        return False
    for item in root.items:
        if isinstance(item, _NEEDS_HEADER):
            words = _ITEM_WORDS[type(item).__name__]
            diagnostics.append(
                Diagnostic(
                    "E011",
                    f"{words} needs a policy header",
                    item.span,
                    f"{_START}; a file without a header is a library, which holds "
                    "propositions, derived propositions and imports only",
                )
            )
            return False
    return True


def _merge(
    root: ir.SourceFile,
    imported_p: list[ir.Proposition],
    imported_d: list[ir.Derived],
    diagnostics: list[Diagnostic],
    *,
    alone: bool = False,
) -> ir.Spec | None:
    """One Spec from a root file and what its imports bring in. A root without a
    header is a library when ``alone`` and it holds nothing that needs a header."""
    header = root.header
    if header is None and not _library_ok(root, alone, diagnostics):
        return None

    def single(kind: type[ir.Node], words: str) -> ir.Node | None:
        found = [i for i in root.items if isinstance(i, kind)]
        for extra in found[1:]:
            diagnostics.append(
                Diagnostic(
                    "E102",
                    f"a second {words}",
                    extra.span,
                    f"the first is at line {found[0].span.line}; merge them",
                )
            )
        return found[0] if found else None

    single(ir.PolicyHeader, "policy header")
    grader = single(ir.GraderSettings, "grader block")
    tiers = single(ir.TiersBlock, "tiers block")
    reward = single(ir.RewardSettings, "reward block")

    # Imported names first (deduplicated by origin), local definitions win.
    local_p = [i for i in root.items if isinstance(i, ir.Proposition)]
    local_d = [i for i in root.items if isinstance(i, ir.Derived)]
    local: list[ir.Proposition | ir.Derived] = [*local_p, *local_d]
    imported: list[ir.Proposition | ir.Derived] = [*imported_p, *imported_d]
    local_names = {i.name for i in local}
    seen: dict[str, ir.Proposition | ir.Derived] = {}
    shadowed: dict[str, ir.Proposition | ir.Derived] = {}
    props: list[ir.Proposition] = []
    derived: list[ir.Derived] = []
    for item in imported:
        if item.name in local_names:
            shadowed.setdefault(item.name, item)
            continue
        prior = seen.get(item.name)
        if prior is not None:
            if prior.span == item.span:
                continue  # the same definition reached along two import paths
            diagnostics.append(
                Diagnostic(
                    "E102",
                    f"'{item.name}' is defined in both {prior.source} and {item.source}",
                    item.span,
                    "rename one of them",
                )
            )
            continue
        seen[item.name] = item
        if isinstance(item, ir.Proposition):
            props.append(item)
        else:
            derived.append(item)
    for item in local:
        prior = shadowed.get(item.name)
        if prior is not None:
            diagnostics.append(
                Diagnostic(
                    "W003",
                    f"'{item.name}' shadows the definition imported from {prior.source}",
                    item.span,
                    "rename it, or drop the import if the local version is meant to replace it",
                    severity="warning",
                )
            )
    props.extend(local_p)
    derived.extend(local_d)
    return ir.Spec.model_construct(
        span=root.span if header is None else header.span,
        name="" if header is None else header.name,
        version="" if header is None else header.version,
        imports=tuple(i for i in root.items if isinstance(i, ir.Import)),
        grader=grader,
        tiers=tiers.tiers if isinstance(tiers, ir.TiersBlock) else (),
        reward=reward,
        propositions=tuple(props),
        derived=tuple(derived),
        response_types=tuple(i for i in root.items if isinstance(i, ir.ResponseType)),
        constraints=tuple(i for i in root.items if isinstance(i, ir.Constraint)),
        tests=tuple(i for i in root.items if isinstance(i, ir.SpecTest)),
        library=header is None,
    )


def _read_template(loader: _Loader, root_path: Path, spec: ir.Spec) -> ir.Spec:
    """Read a ``template = file(...)`` through the confined reader, into the spec."""
    g = spec.grader
    if g is None or g.template_file is None:
        return spec
    named = g.template_at or g.span
    diagnostics = loader.result.diagnostics
    if "\0" in g.template_file or not g.template_file.strip():
        diagnostics.append(Diagnostic("E012", f"invalid template path {g.template_file!r}", named))
        return spec
    path = Path(os.path.abspath(root_path.parent / g.template_file))
    try:
        real, data = read_confined(path, loader.roots, MAX_SOURCE_BYTES, g.template_file)
    except Refused as exc:
        if exc.reason == "outside":
            message = f"template file({g.template_file!r}): {exc}"
            diagnostics.append(Diagnostic("E014", message, named, ALLOW_PATH_HINT))
        else:
            if exc.reason == "missing":
                message = f"cannot read template {g.template_file}: file not found"
            else:
                message = f"cannot read template: {exc}"
            diagnostics.append(
                Diagnostic(
                    "E012",
                    message,
                    named,
                    "template paths are relative to the spec file",
                )
            )
        return spec
    shown = display_path(real)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        diagnostics.append(
            Diagnostic("E012", f"cannot read template {g.template_file}: not UTF-8 text", named)
        )
        return spec
    loader.result.sources[shown] = text
    lines = text.count("\n") + 1
    at = ir.Span.model_construct(file=shown, line=1, col=1, end_line=lines, end_col=1)
    grader = g.model_copy(update={"template_source": text, "template_at": at})
    return spec.model_copy(update={"grader": grader})


def load_spec(
    path: str | Path, allow_paths: Iterable[str | Path] = (), *, alone: bool = False
) -> LoadResult:
    """Read, parse and merge a root spec and everything it imports.

    Imports and ``file(...)`` templates are read only from inside the root spec's
    folder and the ``allow_paths`` folders (E014 otherwise). With ``alone``, a file
    without a header loads as a library or a test file (see the module docstring)
    instead of giving E011."""
    root_path = Path(path).resolve()
    loader = _Loader(Roots.for_spec(root_path, allow_paths))
    root = loader.parse(root_path, None)
    if root is None:
        return loader.result
    if root.header is None and any(isinstance(i, ir.SpecTest) for i in root.items):
        loader.result.kind = "tests"
        if alone:
            loader.result.spec = _load_test_file(loader, root_path, root)
        else:  # E011 (and not a warning for each item of the policy it imports)
            _library_ok(root, alone, loader.result.diagnostics)
        return loader.result
    imported_p, imported_d = loader.follow_imports(root_path, root, (root_path,))
    # Root-file definitions keep source=None; only imported ones carry a source.
    spec = _merge(root, imported_p, imported_d, loader.result.diagnostics, alone=alone)
    if spec is not None:
        spec = _read_template(loader, root_path, spec)
        if spec.library:
            loader.result.kind = "library"
    loader.result.spec = spec
    return loader.result


def _load_test_file(loader: _Loader, path: Path, root: ir.SourceFile) -> ir.Spec | None:
    """The policy a test file imports, carrying the test file's tests (E304 when the
    file imports no policy, several, or holds anything but imports and tests)."""
    diagnostics = loader.result.diagnostics
    for item in root.items:
        if not isinstance(item, (ir.Import, ir.SpecTest)):
            kind = type(item).__name__
            words = {"Proposition": "a proposition", "Derived": "a derived proposition"}.get(
                kind, _ITEM_WORDS.get(kind, kind)
            )
            diagnostics.append(
                Diagnostic(
                    "E304",
                    f"{words} in a test file",
                    item.span,
                    "a test file holds tests and the import of the policy they test; "
                    "move it into the policy, or give this file a policy header",
                )
            )
    policies: list[tuple[Path, ir.SourceFile, ir.Import]] = []
    for item in root.items:
        if not isinstance(item, ir.Import):
            continue
        target = loader.resolve(path, item)
        if target is None:
            continue
        if target == path:
            diagnostics.append(
                Diagnostic("E006", "a file cannot import itself", item.span, "remove the import")
            )
            continue
        source = loader.parse(target, item.span)
        if source is None:
            continue
        if source.header is None:
            diagnostics.append(
                Diagnostic(
                    "E304",
                    f"{item.path} is a library, not a policy",
                    item.span,
                    "a test file imports only the policy it tests; the policy's names "
                    "(its libraries' included) are in scope through it",
                )
            )
            continue
        policies.append((target, source, item))
    if not policies:
        if not any(d.severity == "error" for d in diagnostics):
            diagnostics.append(
                Diagnostic(
                    "E304",
                    "this test file imports no policy",
                    root.items[0].span,
                    'import the policy it tests, e.g. import "safety.rbr"',
                )
            )
        return None
    for _, _, extra in policies[1:]:
        diagnostics.append(
            Diagnostic(
                "E304",
                "a test file tests one policy",
                extra.span,
                f"keep one import; the first is at line {policies[0][2].span.line}",
            )
        )
    target, source, _ = policies[0]
    # Name imported files relative to the policy's folder, as loading the policy
    # itself does (the policy was read from inside the roots, so this widens nothing).
    loader.roots = Roots((target.parent, *loader.roots.dirs))
    imported_p, imported_d = loader.follow_imports(target, source, (path, target))
    spec = _merge(source, imported_p, imported_d, diagnostics)
    if spec is None:
        return None
    spec = _read_template(loader, target, spec)
    tests = tuple(i for i in root.items if isinstance(i, ir.SpecTest))
    return spec.model_copy(update={"tests": tests})


def parse_file(path: str | Path, allow_paths: Iterable[str | Path] = ()) -> ir.Spec:
    """Load a spec or raise :class:`~specc.errors.SpecError` with every diagnostic."""
    result = load_spec(path, allow_paths)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if result.spec is None or errors:
        raise SpecError(errors or result.diagnostics)
    return result.spec
