"""Layering rules, checked on the source: `drivers` never imports `gateway`, the sans-I/O cores
never reach an I/O library, and `drivers/` and `gateway/core/` have no import cycles.

Static: every module of ours is parsed with `ast` (never imported), and its imports are
resolved to our modules and followed transitively. Counted are absolute and relative imports,
imports inside functions (they run sooner or later), the package `__init__` that importing a
submodule runs, and `importlib.import_module` / `__import__` of a literal name or of a string
constant of the module. Not counted: imports under `if TYPE_CHECKING:`, which never run.
A package's lazy exports (a `_LAZY_EXPORTS` table of name -> module, which its module
`__getattr__` imports from on first use) are imports of whoever takes that name from the
package (`from drivers import print_document`; `import drivers` may use any of them), never of
the package itself: importing one of its submodules does not load them.
A dynamic import whose name is computed cannot be followed: those are listed below, so a new
one has to be looked at.

Rules that do not hold yet have their exceptions listed explicitly; a listed exception that
has become unnecessary fails the test, so the lists can only shrink.
"""

from __future__ import annotations

import ast
import importlib
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "drivers", "ippwire")
LAZY_TABLE = "_LAZY_EXPORTS"

# What a sans-I/O module must never reach. trio_websocket is listed itself because the walk
# does not follow third-party packages (it would reach trio).
IO_MODULES = frozenset({"trio", "trio_websocket", "socket", "ssl", "selectors", "asyncio"})

# The sans-I/O cores: pure functions and classes over bytes and values. A name ending in `.*`
# is every module of that package. Each entry must exist (a rename must not drop a rule).
SANS_IO = (
    "ippwire.*",  # the IPP codec and HTTP framing, shared by both sides
    "gateway.server.values",  # IPP value checks
    "gateway.server.attributes",  # printer attributes from capabilities and a snapshot
    "gateway.dnssd.txt",  # DNS-SD records and TXT from the same data as the attributes
    "gateway.dnssd.names",  # DNS-SD instance names and their renaming on a conflict
    "gateway.access",  # who may connect (CIDR rules) and how many connections each holds
    "gateway.privacy",  # who sees a job's private values
    "gateway.core.subscriptions",  # IPP subscriptions, their leases and event queues
    "drivers.transports.lpd_protocol",  # the LPD dialogue
    "drivers.pjl",  # the PJL dialogue
    "drivers.ieee1284",  # IEEE 1284 device ids
    "drivers.autosetup",  # the driver a printer's languages choose
    "drivers.ippcaps",  # a device's IPP capabilities and the driver they choose
    "drivers.uri",  # device URIs
    "drivers.errors",
    # The bottom layer: formats, capabilities, the raster model, PackBits and the codec choice.
    "drivers.model.*",
    # The raster codecs and the format sniffer.
    "drivers.filters.linecodec",
    "drivers.filters.packet_reader",
    "drivers.filters.pwg_raster",
    "drivers.filters.urf",
    "drivers.filters.pnm",
    "drivers.filters.convert",
    "drivers.filters.sniff",
)

# Sans-I/O modules that reach trio today (none: the languages are registered explicitly and
# the raster model is in drivers.model, which imports nothing above it).
KNOWN_IO_REACHERS: frozenset[str] = frozenset()

# Import cycles among the modules of one area, one strongly connected component each.
CYCLE_AREAS = ("drivers", "gateway.core")
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()

# The layers of the paper side, bottom first: a module imports from its own layer and the
# layers below only (imports under TYPE_CHECKING aside). The languages are listed by the
# registry alone, and nothing below a language knows one. Modules not listed (the transports,
# the pipeline, the CLI, the facade) are not held to this.
DRIVERS_LAYERS = (
    ("drivers.errors", "drivers.pjl"),
    ("drivers.model",),  # formats, capabilities, the raster model, PackBits
    ("drivers.filters",),  # readers, converters, stages, Ghostscript, the planning toolkit
    ("drivers.driver",),  # the Driver base: the contract of a language
    ("drivers.languages",),  # one module per language
    ("drivers.registry",),  # the explicit list of the languages
)

# Imports whose module name is computed, which the walk cannot follow: plugin discovery by
# walking a package (drivers.transport loads every drivers.transports.* module this way, so
# the walk does not see those edges) and the preloader that imports everything.
KNOWN_DYNAMIC_IMPORTS = frozenset({"drivers.transport", "gateway.preload"})


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    # Our modules this one imports: (name, line); `implicit` are packages run only because a
    # submodule of theirs is imported (not a dependency on the package's own code).
    imports: list[tuple[str, int]] = field(default_factory=list)
    implicit: set[str] = field(default_factory=set)
    # Top-level names of the other modules it imports: (name, line).
    external: list[tuple[str, int]] = field(default_factory=list)
    dynamic: list[int] = field(default_factory=list)  # lines of unresolvable dynamic imports
    # The modules of ours its import statements name, as written (not what they bring in).
    written: list[tuple[str, int]] = field(default_factory=list)
    lazy: dict[str, str] = field(default_factory=dict)  # its `_LAZY_EXPORTS`, name -> module


def discover(root: Path, packages: Iterable[str]) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package)
    trees = {name: ast.parse(m.path.read_bytes(), m.path) for name, m in modules.items()}
    for name, tree in trees.items():  # every table first: an importer may come before it
        modules[name].lazy = lazy_exports(tree)
    for name, tree in trees.items():
        module = modules[name]
        _ImportCollector(module, modules).visit(tree)
        if "." in module.name:  # running a module runs its package first
            module.implicit.add(module.name.rpartition(".")[0])
    return modules


def lazy_exports(tree: ast.Module) -> dict[str, str]:
    for stmt in tree.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else (
            stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == LAZY_TABLE:
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
            assert isinstance(value, ast.Dict), f"{LAZY_TABLE} must be a dict display"
            table = {}
            for key, item in zip(value.keys, value.values, strict=True):
                assert isinstance(key, ast.Constant) and isinstance(item, ast.Constant), (
                    f"{LAZY_TABLE} must map literal names to literal module names")
                table[str(key.value)] = str(item.value)
            return table
    return {}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: Module, modules: dict[str, Module]) -> None:
        self.module = module
        self.modules = modules
        self.constants: dict[str, str] = {}

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:  # module-level string constants, for import_module(NAME)
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                self.constants[stmt.targets[0].id] = stmt.value.value
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)
            # `import drivers`, or `import drivers.uri` (which binds `drivers` too), can reach
            # every lazy export; `import drivers.uri as uri` binds only the submodule.
            bound = alias.name if alias.asname else alias.name.partition(".")[0]
            package = self.modules.get(bound)
            for target in sorted(set(package.lazy.values()) if package else ()):
                self._add(target, node.lineno, written=False)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            package = self.module.name if self.module.is_package else (
                self.module.name.rpartition(".")[0])
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        if base == "__future__":
            return
        submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in self.modules]
        names_only_submodules = len(submodules) == len(node.names)
        self._add(base, node.lineno, package_is_namespace=names_only_submodules)
        for name in submodules:
            self._add(name, node.lineno)
        lazy = self.modules[base].lazy if base in self.modules else {}
        for alias in node.names:
            if alias.name in lazy:
                self._add(lazy[alias.name], node.lineno, written=False)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
            isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
        ):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._add(arg.value, node.lineno)
            elif isinstance(arg, ast.Name) and arg.id in self.constants:
                self._add(self.constants[arg.id], node.lineno)
            elif (self.module.lazy and isinstance(arg, ast.Subscript)
                  and isinstance(arg.value, ast.Name) and arg.value.id == LAZY_TABLE):
                pass  # the package's own lazy exports: followed from their importers
            else:
                self.module.dynamic.append(node.lineno)
        self.generic_visit(node)

    def _add(self, name: str, line: int, *, package_is_namespace: bool = False,
             written: bool = True) -> None:
        if name.partition(".")[0] not in self.modules:
            self.module.external.append((name.partition(".")[0], line))
            return
        if written:
            self.module.written.append((name, line))
        # `import a.b.c` runs a, then a.b, then a.b.c.
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in self.modules and parent != self.module.name:
                self.module.implicit.add(parent)
        if name not in self.modules or name == self.module.name:
            return  # a compiled extension, or a package importing its own submodules
        if package_is_namespace and self.modules[name].is_package:
            self.module.implicit.add(name)
        else:
            self.module.imports.append((name, line))


def _edges(module: Module) -> Iterator[tuple[str, int]]:
    yield from module.imports
    yield from ((name, 0) for name in sorted(module.implicit))


def reach(modules: dict[str, Module], start: str) -> dict[str, tuple[str, int] | None]:
    """Every module of ours that importing `start` runs, each with the module and line that
    first imports it on a shortest chain (None for `start`)."""
    seen: dict[str, tuple[str, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target, line in _edges(modules[current]):
            if target not in seen:
                seen[target] = (current, line)
                queue.append(target)
    return seen


def chain(seen: dict[str, tuple[str, int] | None], end: str) -> str:
    """The imports from the start of `seen` to `end`, one `module:line -> module` a line."""
    links = []
    while (step := seen[end]) is not None:
        source, line = step
        links.append(f"{source}:{line} -> {end}" if line else f"{source} -> {end} (its package)")
        end = source
    return "\n      ".join(reversed(links))


def io_reached(modules: dict[str, Module], start: str) -> list[str]:
    """How `start` reaches an I/O module: one line per import of one, with the chain to it."""
    seen = reach(modules, start)
    found = []
    for name in seen:
        for external, line in modules[name].external:
            if external in IO_MODULES:
                via = chain(seen, name)
                found.append(f"{name}:{line} imports {external}" + (via and f"\n      via {via}"))
    return found


def in_area(name: str, area: str) -> bool:
    return name == area or name.startswith(f"{area}.")


def cycles(modules: dict[str, Module], area: str) -> set[frozenset[str]]:
    """The import cycles among the modules of `area` (a package and everything under it), as
    strongly connected components; implicit package edges do not count."""
    inside = {n for n in modules if in_area(n, area)}
    graph = {n: {t for t, _ in modules[n].imports if t in inside} for n in inside}
    after = {n: _beyond(graph, n) for n in inside}  # small graphs: a walk from each node
    return {frozenset(m for m in after[n] if n in after[m]) for n in inside if n in after[n]}


def _beyond(graph: dict[str, set[str]], start: str) -> set[str]:
    """The nodes one or more edges away from `start` (`start` too if it is on a cycle)."""
    found: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in found:
            found.add(node)
            todo.extend(graph[node])
    return found


def expand(modules: dict[str, Module], patterns: Iterable[str]) -> list[str]:
    names = []
    for pattern in patterns:
        if pattern.endswith(".*"):
            matched = sorted(n for n in modules if in_area(n, pattern[:-2]))
        else:
            matched = [pattern] if pattern in modules else []
        assert matched, f"{pattern} names no module: update SANS_IO"
        names.extend(matched)
    return names


MODULES = discover(REPO, PACKAGES)


def test_drivers_never_import_gateway() -> None:
    """Walked from every drivers module; reported by the imports that cross over, each with
    the drivers modules that reach it."""
    crossings: dict[str, list[str]] = {}
    for name in sorted(n for n in MODULES if in_area(n, "drivers")):
        seen = reach(MODULES, name)
        for target, step in seen.items():
            # (A package edge into gateway comes only with an import of a gateway module.)
            if in_area(target, "gateway") and step and in_area(step[0], "drivers") and step[1]:
                crossing = f"{step[0]}:{step[1]} imports {target}"
                crossings.setdefault(crossing, []).append(name)
    assert not crossings, "drivers must not import gateway:\n  " + "\n  ".join(
        f"{crossing}\n      reached from {', '.join(names)}"
        for crossing, names in sorted(crossings.items()))


def test_ippwire_imports_neither_side() -> None:
    """The wire formats both sides share (the IPP codec, HTTP framing) stand alone."""
    crossings = sorted(f"{name} imports {target}" for name in MODULES
                       if in_area(name, "ippwire")
                       for target, _line in MODULES[name].imports
                       if in_area(target, "gateway") or in_area(target, "drivers"))
    assert not crossings, "ippwire must import neither gateway nor drivers:\n  " + (
        "\n  ".join(crossings))


def test_gateway_imports_drivers_only_through_its_facade() -> None:
    """`gateway` takes what it uses from the `drivers` package (its `__init__` exports it),
    never from a submodule, so the paper side can be rearranged behind it. Imports under
    `if TYPE_CHECKING:` do not count; gateway.preload imports every module on purpose, by
    computed names."""
    found = [f"{name}:{line} imports {target}"
             for name in sorted(n for n in MODULES if in_area(n, "gateway"))
             for target, line in MODULES[name].written
             if in_area(target, "drivers") and target != "drivers"]
    assert not found, ("gateway must import drivers only as `from drivers import NAME`:\n  "
                       + "\n  ".join(found))


def test_the_drivers_facade_says_the_same_to_type_checkers_and_at_run_time() -> None:
    """Its `TYPE_CHECKING` imports (what mypy sees), `_LAZY_EXPORTS` (what runs and what the
    walk follows) and `__all__` name the same things, each from the same module."""
    tree = ast.parse(MODULES["drivers"].path.read_bytes())
    typed = {alias.asname or alias.name: stmt.module
             for block in tree.body if isinstance(block, ast.If) and _is_type_checking(block.test)
             for stmt in block.body if isinstance(stmt, ast.ImportFrom)
             for alias in stmt.names}
    assert typed == MODULES["drivers"].lazy
    import drivers

    assert sorted(drivers.__all__) == sorted(typed)
    for name, module in typed.items():
        assert getattr(drivers, name) is getattr(importlib.import_module(str(module)), name)


@pytest.mark.parametrize("name", expand(MODULES, SANS_IO))
def test_sans_io_module_never_reaches_io(name: str) -> None:
    found = io_reached(MODULES, name)
    if name in KNOWN_IO_REACHERS:
        assert found, (f"{name} no longer reaches {sorted(IO_MODULES)}: "
                       "remove it from KNOWN_IO_REACHERS")
    else:
        assert not found, f"sans-I/O module {name} reaches I/O:\n  " + "\n  ".join(found)


def test_known_io_reachers_are_sans_io_modules() -> None:
    assert not KNOWN_IO_REACHERS - set(expand(MODULES, SANS_IO)), "not in SANS_IO"


@pytest.mark.parametrize("area", CYCLE_AREAS)
def test_no_import_cycles(area: str) -> None:
    found = cycles(MODULES, area)
    known = {c for c in KNOWN_CYCLES if all(in_area(n, area) for n in c)}
    new = [c for c in found if not any(c <= k for k in known)]
    gone = [k for k in known if k not in found]
    assert not new, f"import cycles in {area}, one per paragraph, by their imports:\n  " + (
        "\n\n  ".join("\n  ".join(f"{n}:{line} -> {t}" for n in sorted(c)
                                   for t, line in MODULES[n].imports if t in c) for c in new))
    assert not gone, (f"known cycles in {area} changed or were broken; KNOWN_CYCLES should now "
                      f"be exactly {sorted(sorted(c) for c in found)}")


def _layer(name: str) -> int | None:
    return next((i for i, layer in enumerate(DRIVERS_LAYERS)
                 if any(in_area(name, area) for area in layer)), None)


def test_drivers_layers_import_only_downwards() -> None:
    found = []
    for name, module in MODULES.items():
        own = _layer(name)
        if own is None:
            continue
        for target, line in module.imports:
            layer = _layer(target)
            if layer is not None and layer > own:
                found.append(f"{name}:{line} -> {target}")
    assert not found, "imports up the drivers layers:\n  " + "\n  ".join(found)


def test_dynamic_imports_are_known() -> None:
    found = {n for n, m in MODULES.items() if m.dynamic}
    assert found == KNOWN_DYNAMIC_IMPORTS, (
        "imports of computed module names (not followed by these rules) changed: "
        f"new {sorted(found - KNOWN_DYNAMIC_IMPORTS)}, gone {sorted(KNOWN_DYNAMIC_IMPORTS - found)}"
    )


# The walk itself, on a made-up tree: each kind of import it must see, and the one it must not.


def _tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return discover(root, ["pkg"])


def test_walk_sees_relative_function_level_and_literal_dynamic_imports(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def f():\n    from .sub.c import x\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import importlib\nNAME = 'pkg.d'\nimportlib.import_module(NAME)\n",
        "pkg/d.py": "__import__('pkg.e')\n",
        "pkg/e.py": "import trio.lowlevel\n",
    })
    assert [line.split("\n")[0] for line in io_reached(modules, "pkg.a")] == [
        "pkg.e:1 imports trio"]
    assert "pkg.sub" in reach(modules, "pkg.b")  # the package a submodule import runs


def test_walk_ignores_type_checking_imports_and_finds_cycles(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",  # a package importing its own submodule
        "pkg/a.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.b\nimport pkg.c\n",
        "pkg/b.py": "import trio\nimport pkg.a\n",
        "pkg/c.py": "from pkg import d\n",
        "pkg/d.py": "from .c import x\n",
    })
    assert io_reached(modules, "pkg.a") == []
    assert cycles(modules, "pkg") == {frozenset({"pkg.c", "pkg.d"})}


def test_walk_follows_lazy_exports_from_their_importers_only(tmp_path: Path) -> None:
    modules = _tree(tmp_path, {
        "pkg/__init__.py": """
            import importlib
            _LAZY_EXPORTS: dict[str, str] = {"run": "pkg.loop", "Value": "pkg.pure"}
            def __getattr__(name):
                return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
            """,
        "pkg/loop.py": "import trio\n",
        "pkg/pure.py": "Value = int\n",
        "pkg/user_pure.py": "from pkg import Value\n",
        "pkg/user_loop.py": "from pkg import Value, run\n",
        "pkg/whole.py": "import pkg\n",
        "pkg/aliased.py": "import pkg.pure as pure\n",
    })
    assert not modules["pkg"].dynamic  # the table's import is not an unknown one
    assert io_reached(modules, "pkg.pure") == []  # its package does not load the exports
    assert io_reached(modules, "pkg.user_pure") == []
    assert [line.split("\n")[0] for line in io_reached(modules, "pkg.user_loop")] == [
        "pkg.loop:1 imports trio"]
    assert io_reached(modules, "pkg.whole") != []
    assert io_reached(modules, "pkg.aliased") == []
    assert [name for name, _ in modules["pkg.user_loop"].written] == ["pkg"]


def test_no_test_module_imports_another() -> None:
    """What tests share lives where its purpose says: plain functions and classes in
    tests/support/, real peers' process plumbing in tests/peers/, fixtures in conftest.py files.
    So no module under tests/ (or bench/) imports a test module (`test_*.py`) or a conftest:
    that would run another module's tests' setup and hide where a shared helper lives."""
    modules = discover(REPO, ("tests", "bench"))

    def is_test_module(name: str) -> bool:
        last = name.rpartition(".")[2]
        return last.startswith("test_") or last == "conftest"

    found = [f"{module.path.relative_to(REPO)}:{line} imports {target}"
             for name, module in sorted(modules.items())
             for target, line in module.written
             if target != name and target in modules and is_test_module(target)]
    assert not found, ("move what is shared to tests/support/ (fixtures to a conftest.py):\n  "
                       + "\n  ".join(found))
