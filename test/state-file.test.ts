/**
 * actors/state-file.ts: what makes a state.json usable, the reason a damaged one gives, and atomic writes whose
 * failures name the file and errno.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LifecycleError } from '../errors/index.js';
import { parseProblem, recordProblem, writeFileAtomic } from '../actors/state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'cordon-state-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = { version: 2, id: 'web', ociVersion: '1.2.0', pid: 42, pidStartTime: '1234', bundle: '/b', rootfs: '/b/rootfs', created: '2026-01-01T00:00:00Z', owner: '', annotations: {}, namespaces: [{ type: 'pid', path: '/proc/42/ns/pid' }], cgroupPaths: { unified: '/sys/fs/cgroup/web' }, config: {} };

describe('parseProblem', () => {
  it('an empty file, a truncated one, one that is not JSON', () => {
    expect(parseProblem('')).toEqual({ problem: 'the file is empty' });
    expect(parseProblem('{"id": "we').problem).toMatch(/^truncated JSON \(Unterminated string in JSON at position \d+; 10 bytes\)$/);
    expect(parseProblem('{"id": 1,}\n').problem).toMatch(/^invalid JSON \(/);
    expect(parseProblem(JSON.stringify(good) + '\n')).toEqual({ value: good });
  });
});

describe('recordProblem', () => {
  it('names the first field missing or of the wrong type, an empty object, an id that is not the directory', () => {
    expect(recordProblem(good, 'web')).toBeUndefined();
    expect(recordProblem({}, 'web')).toBe('an empty object ({}): none of the fields of a state record');
    expect(recordProblem([], 'web')).toBe('expected a JSON object, got an array');
    expect(recordProblem({ ...good, pid: '42' }, 'web')).toBe('pid: expected a positive integer, got "42"');
    expect(recordProblem({ ...good, pidStartTime: 12 }, 'web')).toBe('pidStartTime: expected a decimal string, got number 12');
    expect(recordProblem({ ...good, annotations: undefined }, 'web')).toBe('annotations: expected an object of strings, got nothing (the field is missing)');
    expect(recordProblem({ ...good, cgroupPaths: undefined }, 'web')).toBeUndefined();
    expect(recordProblem({ ...good, cgroupPaths: { unified: 1 } }, 'web')).toBe('cgroupPaths: expected an object of paths, got an object');
    expect(recordProblem(good, 'db')).toBe('id: "web" is not the directory\'s id "db"');
  });
});

describe('writeFileAtomic', () => {
  it('a refused write is a SystemError naming what, the step, the file and errno, and leaves no temporary file', () => {
    const file = join(dir, 'missing', 'state.json');
    let err: unknown;
    try {
      writeFileAtomic(file, '{}', 'container web');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LifecycleError);
    expect(err).toMatchObject({ code: 'SystemError', errno: 2, message: `container web: write ${file}: ENOENT (no such file or directory)` });
    writeFileAtomic(join(dir, 'ok.json'), '{}', 'container web');
    expect(readdirSync(dir)).toEqual(['ok.json']);
  });
});
