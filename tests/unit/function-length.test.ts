/**
 * Long functions say why: in domain/, projections/ and http/, a function over 80 lines needs a comment just above it
 * (or above the declaration, property or export holding it) that says "Over 80 lines because …". The check reads
 * the sources with the TypeScript compiler API, so it stays true as the code changes.
 */
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const FOLDERS = ['domain', 'projections', 'http'];
const MAX_LINES = 80;
const WHY = /over 80 lines because/i;

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** The comments just above `node`, or above whatever holds it (a variable, a property, an export, a call argument). */
function commentsAbove(node: ts.Node, text: string): string {
  let found = '';
  for (let at: ts.Node | undefined = node; at && !ts.isSourceFile(at) && !ts.isBlock(at); at = at.parent) {
    for (const range of ts.getLeadingCommentRanges(text, at.getFullStart()) ?? []) found += text.slice(range.pos, range.end);
  }
  return found;
}

/** Every function over MAX_LINES lines that does not say why, as `file:line name (N lines)`. */
function unexplainedLongFunctions(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        const lines = end - start + 1;
        if (lines > MAX_LINES && !WHY.test(commentsAbove(node, text))) {
          const name = node.name && ts.isIdentifier(node.name) ? node.name.text : ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name) ? node.parent.name.text : '(anonymous)';
          found.push(`${file}:${start + 1} ${name} (${lines} lines)`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

test(`no function over ${MAX_LINES} lines in ${FOLDERS.join('/, ')}/ without a comment saying why`, (t) => {
  const files = FOLDERS.flatMap(sources);
  t.true(files.length > 50, 'the sources were found');
  t.deepEqual(unexplainedLongFunctions(files), []);
});

test('the check finds a long function without a reason, and accepts one with', (t) => {
  const body = Array.from({ length: MAX_LINES }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const dir = path.join(process.env.TMPDIR ?? '/tmp', `function-length-${process.pid}`);
  const files = [path.join(dir, 'bare.ts'), path.join(dir, 'said.ts')];
  mkdirSync(dir, { recursive: true });
  writeFileSync(files[0]!, `export function bare() {\n${body}\n}\n`);
  writeFileSync(files[1]!, `/** Over 80 lines because it is a table. */\nexport const said = () => {\n${body}\n};\n`);
  try {
    t.deepEqual(unexplainedLongFunctions(files), [`${files[0]}:1 bare (${MAX_LINES + 2} lines)`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
