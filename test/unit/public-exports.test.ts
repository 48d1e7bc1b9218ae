// The public surface of the built package: a narrow root (at most ROOT_BUDGET names, types included),
// subpath exports that resolve for Node and for TypeScript, and no name of the native addon's surface
// (ts/binding/NativeTypes.ts, ts/binding/loadNative.ts) reachable from any entry. Reads dist/, so it
// checks what npm would publish; needs no addon (nothing is called).
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import test from 'ava';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const NAME = 'lep';
const ROOT_BUDGET = 100;

interface Conditions {
  types: string;
  import: string;
  default: string;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, Conditions | string> };
const entries = Object.entries(pkg.exports).filter((e): e is [string, Conditions] => typeof e[1] === 'object');
const specifier = (sub: string): string => (sub === '.' ? NAME : `${NAME}/${sub.slice(2)}`);

const NATIVE_FILES = ['NativeTypes.d.ts', 'loadNative.d.ts'].map((f) => resolve(ROOT, 'dist', 'ts', 'binding', f));
// One program over every entry's declarations and the native surface's (building one per file is slow).
const program = ts.createProgram([...entries.map(([, c]) => join(ROOT, c.types)), ...NATIVE_FILES], {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  noEmit: true,
  skipLibCheck: true,
  types: [],
});
const checker = program.getTypeChecker();

/** Every name a declaration file exports (values and types), each with the files declaring what it re-exports. */
function declaredExports(dts: string): { name: string; files: string[] }[] {
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(dts)!)!;
  return checker.getExportsOfModule(moduleSymbol).map((s) => {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    return { name: s.name, files: (target.declarations ?? []).map((d) => resolve(d.getSourceFile().fileName)) };
  });
}

test('the package name allows self-reference, and every export is a types/import/default triple but package.json', (t) => {
  t.is(pkg.name, NAME);
  t.true(entries.length > 1, 'subpath exports exist');
  for (const [sub, c] of entries) {
    t.deepEqual(Object.keys(c), ['types', 'import', 'default'], `${sub}: "types" must come first to be used`);
    t.is(c.import, c.default, sub);
    t.is(c.types, c.import.replace(/\.js$/, '.d.ts'), sub);
  }
  t.is(pkg.exports['./package.json'], './package.json');
});

test(`the root exports at most ${ROOT_BUDGET} names, types included`, async (t) => {
  const root = entries.find(([sub]) => sub === '.')![1];
  const all = declaredExports(join(ROOT, root.types)).map((e) => e.name);
  const runtime = Object.keys(await import(specifier('.')));
  t.true(runtime.every((n) => all.includes(n)), 'the declarations name every runtime export');
  t.log(`root: ${all.length} names (${runtime.length} runtime, ${all.length - runtime.length} type-only)`);
  t.true(all.length <= ROOT_BUDGET, `the root exports ${all.length} names (> ${ROOT_BUDGET}); put area helpers in a subpath (docs/api.md)`);
  for (const n of ['LepModel', 'Tokenizer', 'LepError', 'ErrorCode', 'trainTokenizer', 'extendTokenizer', 'shrinkTokenizer', 'initEmbeddings', 'trainModel', 'propagate', 'calibrate', 'evaluate', 'exportGguf', 'adapt'])
    t.true(all.includes(n), `the root exports ${n}`);
});

test('every subpath export resolves by its package specifier and has exports', async (t) => {
  for (const [sub, c] of entries) {
    const spec = specifier(sub);
    t.is(import.meta.resolve(spec), new URL(c.import, `file://${ROOT}/`).href, spec);
    const mod = (await import(spec)) as Record<string, unknown>;
    t.true(Object.keys(mod).length > 0 || declaredExports(join(ROOT, c.types)).length > 0, `${spec} exports something`);
  }
  t.is(import.meta.resolve(`${NAME}/package.json`), new URL('package.json', `file://${ROOT}/`).href);
});

test('no entry exports a name of the native surface', (t) => {
  const nativeNames = new Set(NATIVE_FILES.flatMap((f) => declaredExports(f).map((e) => e.name)));
  t.true(nativeNames.has('NativeAddon') && nativeNames.has('getNative'), 'the native surface was read');
  for (const [sub, c] of entries) {
    for (const e of declaredExports(join(ROOT, c.types))) {
      t.false(nativeNames.has(e.name) || e.name.startsWith('Native'), `${specifier(sub)} exports ${e.name}`);
      t.false(e.files.some((f) => NATIVE_FILES.includes(f)), `${specifier(sub)} re-exports ${e.name} from the native surface`);
    }
  }
});

// A class's public members are surface too: LepModel's native handle (ts/model/LepModel.ts, @internal)
// is left out of its declarations, so no exported class has a member whose type is a native interface
// with methods (a handle whose calls skip the checks and the LepError wrapping; data types are fine).
test('no exported class has a member typed by a native handle', (t) => {
  let classes = 0;
  for (const [, c] of entries) {
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(join(ROOT, c.types))!)!;
    for (const s of checker.getExportsOfModule(moduleSymbol)) {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      if (!(target.flags & ts.SymbolFlags.Class)) continue;
      classes++;
      const decl = target.declarations![0]!;
      const instance = checker.getDeclaredTypeOfSymbol(target);
      const statics = checker.getTypeOfSymbolAtLocation(target, decl);
      for (const member of [...instance.getProperties(), ...statics.getProperties()]) {
        const type = checker.getTypeOfSymbolAtLocation(member, decl);
        const native = (type.getSymbol()?.declarations ?? []).some((d) => NATIVE_FILES.includes(resolve(d.getSourceFile().fileName)));
        const methods = type.getProperties().some((p) => checker.getTypeOfSymbolAtLocation(p, decl).getCallSignatures().length > 0);
        t.false(native && methods, `${target.name}.${member.name} is a native handle (${checker.typeToString(type)})`);
      }
    }
  }
  t.true(classes >= 2, `exported classes read: ${classes}`);
});

test('TypeScript consumers resolve the types of the root and every subpath (NodeNext and Bundler)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lep-consumer-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', NAME), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    const lines = entries.map(([sub], i) => `import * as m${i} from '${specifier(sub)}';\nexport const k${i}: string[] = Object.keys(m${i});`);
    lines.push(`import { LepModel, type TrainOptions } from '${NAME}';\nexport const load: typeof LepModel.load = LepModel.load;\nexport const steps: TrainOptions['steps'] = 1;`);
    const file = join(dir, 'consumer.ts');
    writeFileSync(file, lines.join('\n') + '\n');
    for (const [module, moduleResolution] of [
      [ts.ModuleKind.NodeNext, ts.ModuleResolutionKind.NodeNext],
      [ts.ModuleKind.ESNext, ts.ModuleResolutionKind.Bundler],
    ] as const) {
      const program = ts.createProgram([file], {
        module,
        moduleResolution,
        target: ts.ScriptTarget.ES2022,
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        types: ['node'],
      });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      t.deepEqual(diagnostics, [], ts.ModuleResolutionKind[moduleResolution]);
      const checker = program.getTypeChecker();
      for (const decl of program.getSourceFile(file)!.statements.filter(ts.isImportDeclaration)) {
        const spec = (decl.moduleSpecifier as ts.StringLiteral).text;
        const symbol = checker.getSymbolAtLocation(decl.moduleSpecifier);
        t.true(symbol !== undefined && checker.getExportsOfModule(symbol).length > 0, `${spec} has typed exports`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/api.md names every subpath, and each name the migration table moves is exported by its subpath', async (t) => {
  const api = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
  for (const [sub] of entries) t.true(api.includes(`\`${specifier(sub)}\``), `docs/api.md describes ${specifier(sub)}`);
  const migration = readFileSync(join(ROOT, 'docs', 'migration.md'), 'utf8');
  const rows = [...migration.matchAll(/^\| `(lep\/[a-z]+)` \| (.+) \|$/gm)];
  t.true(rows.length > 0, 'migration.md has the table of moved names');
  for (const [, spec, names] of rows) {
    const entry = entries.find(([sub]) => specifier(sub) === spec);
    t.truthy(entry, `${spec} is a subpath export`);
    const exported = new Set(declaredExports(join(ROOT, entry![1].types)).map((e) => e.name));
    for (const [, name] of names!.matchAll(/`(\w+)`/g)) t.true(exported.has(name!), `${spec} exports ${name}`);
  }
});
