// Run one Python script under MicroPython 1.27 (WebAssembly build, run by node) with the
// MicroPython-safe part of wgedge importable.
//
//   node tests/mpy/run.mjs <repository root> <script.py>
//
// Exit status: the script's own (0 normally, N for sys.exit(N)), 1 when it raised (the
// MicroPython traceback goes to stderr), 2 for a usage or setup problem (e.g. the npm package
// is missing: run `make micropython`).
//
// How the npm package @micropython/micropython-webassembly-pyscript is driven (micropython.mjs):
// - loadMicroPython({heapsize, pystack, stdout, stderr, linebuffer}) returns an object with
//   runPython(code), FS (Emscripten's in-memory filesystem) and globals (__main__'s dict).
// - stdout/stderr callbacks get a Uint8Array per byte when linebuffer is false; with
//   linebuffer true they get decoded lines and drop a last line without "\n", so we take bytes.
// - runPython throws a JS Error named "PythonError" whose .type is the exception class name and
//   whose .message is MicroPython's formatted traceback.
// - sys.path is ['', '.frozen', '/lib'] at start; we still put /lib first explicitly.
// - heapsize is the first GC heap area (default 1 MiB); this build adds areas as it needs them
//   (300 MiB allocates fine from a 1 MiB start), so the size is a knob for fewer collections,
//   not a cap. We start at 128 MiB (WGEDGE_MPY_HEAP_MB overrides) for pure-Python big ints.
// - The recursion limit comes from the C stack, not pystack, and is low: between 100 and 200
//   nested Python calls raise RuntimeError('maximum recursion depth exceeded').

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const PACKAGE = "@micropython/micropython-webassembly-pyscript";
const LIB = "/lib";

// The MicroPython-safe part of the package: files and whole trees (relative to the root).
const SAFE_FILES = ["wgedge/__init__.py", "wgedge/crypto/__init__.py", "wgedge/config/__init__.py",
  "wgedge/config/uci.py", "wgedge/config/export.py"];
const SAFE_TREES = ["wgedge/core", "wgedge/crypto/pure"];

function fail(message) {
  process.stderr.write(`run.mjs: ${message}\n`);
  process.exit(2);
}

function pyFilesUnder(root, rel) {
  const dir = path.join(root, rel);
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const child = path.posix.join(rel, entry.name);
    if (entry.isDirectory() && entry.name !== "__pycache__") {
      found.push(...pyFilesUnder(root, child));
    } else if (entry.isFile() && entry.name.endsWith(".py")) {
      found.push(child);
    }
  }
  return found;
}

function safeModuleFiles(root) {
  const files = SAFE_FILES.filter((rel) => fs.existsSync(path.join(root, rel)));
  for (const tree of SAFE_TREES) files.push(...pyFilesUnder(root, tree));
  return files.sort();
}

async function main() {
  const [rootArg, scriptArg] = process.argv.slice(2);
  if (!rootArg || !scriptArg) fail("usage: node run.mjs <repository root> <script.py>");
  const root = path.resolve(rootArg);
  const script = path.resolve(scriptArg);
  if (!fs.existsSync(script)) fail(`no such script: ${script}`);

  const mjs = path.join(root, ".cache/micropython/node_modules", PACKAGE, "micropython.mjs");
  if (!fs.existsSync(mjs)) fail(`MicroPython not found at ${mjs}: run \`make micropython\``);
  const { loadMicroPython } = await import(pathToFileURL(mjs).href);

  const heapMb = Number(process.env.WGEDGE_MPY_HEAP_MB || 128);
  const mp = await loadMicroPython({
    heapsize: heapMb * 1024 * 1024,
    linebuffer: false,
    stdout: (bytes) => process.stdout.write(bytes),
    stderr: (bytes) => process.stderr.write(bytes),
  });

  for (const rel of safeModuleFiles(root)) {
    const target = path.posix.join(LIB, rel);
    mp.FS.mkdirTree(path.posix.dirname(target));
    mp.FS.writeFile(target, fs.readFileSync(path.join(root, rel)));
  }
  const scriptInVfs = path.posix.join("/run", path.basename(script));
  mp.FS.mkdirTree("/run");
  mp.FS.writeFile(scriptInVfs, fs.readFileSync(script));

  // Run the script as __main__ with its own name in tracebacks; turn sys.exit into a status.
  const runner = [
    "import sys",
    `if sys.path[:1] != [${JSON.stringify(LIB)}]:`,
    `    sys.path.insert(0, ${JSON.stringify(LIB)})`,
    "_wgedge_exit = 0",
    `_wgedge_file = ${JSON.stringify(scriptInVfs)}`,
    "try:",
    "    with open(_wgedge_file) as _f:",
    "        _wgedge_code = compile(_f.read(), _wgedge_file, 'exec')",
    "    exec(_wgedge_code, {'__name__': '__main__', '__file__': _wgedge_file})",
    "except SystemExit as _e:",
    "    _c = _e.args[0] if _e.args else None",
    "    if _c is None:",
    "        _wgedge_exit = 0",
    "    elif isinstance(_c, int):",
    "        _wgedge_exit = _c",
    "    else:",
    "        print(_c, file=sys.stderr)",
    "        _wgedge_exit = 1",
  ].join("\n");
  try {
    mp.runPython(runner);
  } catch (error) {
    if (error.name !== "PythonError") throw error;
    process.stderr.write(`MicroPython raised ${error.type} in ${script}:\n${error.message}`);
    process.exitCode = 1;
    return;
  }
  process.exitCode = mp.globals.get("_wgedge_exit");
}

await main();
