#!/usr/bin/env node
// A `solc` executable for py-solc-x and brownie, built on npm's solcjs (wasm),
// so contracts compile with no network access.
//
// Answers `--version` like the native binary and `--standard-json` (input on
// stdin, output on stdout). `--base-path`, `--include-path` and `--allow-paths`
// are accepted; their folders (and the working directory) are searched when a
// source imports a file that was not given in the input.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..');
const solc = require(path.join(projectRoot, 'node_modules', 'solc'));

const args = process.argv.slice(2);
const searchDirs = [process.cwd()];
let standardJson = false;

for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  const value = () => {
    const v = arg.includes('=') ? arg.split('=').slice(1).join('=') : args[++i];
    if (v === undefined) fail(`option ${arg} needs a value`);
    return v;
  };
  if (arg === '--version' || arg === '-v') {
    process.stdout.write(
      `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    process.exit(0);
  } else if (arg === '--standard-json') {
    standardJson = true;
  } else if (arg.startsWith('--base-path') || arg.startsWith('--include-path')) {
    searchDirs.push(path.resolve(value()));
  } else if (arg.startsWith('--allow-paths')) {
    for (const dir of value().split(',')) if (dir) searchDirs.push(path.resolve(dir));
  } else if (arg === '--help' || arg === '-h') {
    process.stdout.write('usage: solc --version | solc --standard-json [--base-path DIR] ' +
      '[--include-path DIR] [--allow-paths DIRS] < input.json\n');
    process.exit(0);
  } else {
    fail(`unsupported option ${arg} (this solc wrapper supports --version and --standard-json)`);
  }
}

if (!standardJson) fail('nothing to do: pass --standard-json or --version');

function fail(message) {
  process.stderr.write(`solc: ${message}\n`);
  process.exit(1);
}

function findImport(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : searchDirs.map((dir) => path.join(dir, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    } catch (_) { /* try the next folder */ }
  }
  return { error: `File not found: ${importPath} (searched ${searchDirs.join(', ')})` };
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  process.stdout.write(solc.compile(input, { import: findImport }));
  process.stdout.write('\n');
});
