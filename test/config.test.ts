import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  RUNC_DEFAULT_MASKED_PATHS,
  RUNC_DEFAULT_READONLY_PATHS,
  convertCapabilities,
  Issues,
  loadBundle,
  parseConfigJson,
  parseMountOptions,
  specToSetup,
  stringifyConfigJson,
  sysctlDottedName,
} from '../config/index.js';

type Json = Record<string, any>;

let bundle: string;
const tmpDirs: string[] = [];

function makeBundle(config?: Json | string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cordon-config-'));
  tmpDirs.push(dir);
  mkdirSync(path.join(dir, 'rootfs'));
  writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 localhost\n');
  mkdirSync(path.join(dir, 'data'));
  if (config !== undefined) writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return dir;
}

/** A config like `runc spec` writes, with a user-chosen rootfs and some extras. */
function runcSpec(): Json {
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        ambient: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: [...RUNC_DEFAULT_MASKED_PATHS],
      readonlyPaths: [...RUNC_DEFAULT_READONLY_PATHS],
    },
  };
}

/** Run `fn`, expecting a ConfigError; return it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

/** Convert `spec` in the shared bundle, expecting exactly the issue `path: message` among the errors. */
function expectIssue(spec: Json, issuePath: string, message: string | RegExp, opts = {}): ConfigError {
  const err = configError(() => specToSetup(spec, bundle, opts));
  const found = err.issues.filter((i) => i.path === issuePath);
  expect(found.map((i) => i.message), `issues were: ${err.message}`).toContainEqual(typeof message === 'string' ? message : expect.stringMatching(message));
  if (typeof message === 'string') expect(err.message).toContain(`${issuePath}: ${message}`);
  return err;
}

function edit(f: (s: Json) => void): Json {
  const s = runcSpec();
  f(s);
  return s;
}

beforeAll(() => {
  bundle = makeBundle();
});
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('a good config', () => {
  it('converts runc spec defaults with the right numbers', async () => {
    const dir = makeBundle(runcSpec());
    const loaded = await loadBundle(dir);
    const { setup } = loaded;
    expect(loaded.bundle).toBe(dir);
    expect(setup.rootfs).toBe(path.join(dir, 'rootfs'));
    expect(setup.readonlyRootfs).toBe(true);
    expect(setup.rootPropagation).toBe(0x80000 | 0x4000); // MS_SLAVE|MS_REC
    expect(setup.noPivotRoot).toBe(false);
    expect(setup.hostname).toBe('runc');
    expect(setup.domainname).toBeUndefined();
    expect(setup.namespaces).toEqual([{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }]);
    expect(setup.mounts).toEqual([
      { destination: '/proc', type: 'proc', source: 'proc', flags: 0, clearedFlags: 0, propagationFlags: [], data: '' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', flags: 0x1000002, clearedFlags: 0, propagationFlags: [], data: 'mode=755,size=65536k' },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', flags: 0xa, clearedFlags: 0, propagationFlags: [], data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', flags: 0xe, clearedFlags: 0, propagationFlags: [], data: 'mode=1777,size=65536k' },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', flags: 0xe, clearedFlags: 0, propagationFlags: [], data: '' },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', flags: 0xf, clearedFlags: 0, propagationFlags: [], data: '' },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', flags: 0x20000f, clearedFlags: 0, propagationFlags: [], data: '' },
    ]);
    expect(setup.maskedPaths).toEqual([...RUNC_DEFAULT_MASKED_PATHS]);
    expect(setup.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    expect(setup.devices).toEqual([]);
    expect(setup.sysctl).toEqual({});
    expect(setup.uidMappings).toEqual([]);
    expect(setup.process).toEqual({
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      terminal: true,
      uid: 0,
      gid: 0,
      additionalGids: [],
      rlimits: [{ name: 'RLIMIT_NOFILE', resource: 7, soft: 1024n, hard: 1024n }],
      noNewPrivileges: true,
      capabilities: { bounding: [29, 5, 10], effective: [29, 5, 10], permitted: [29, 5, 10], inheritable: [], ambient: [29, 5, 10] },
    });
    expect(loaded.hooks).toEqual({});
    expect(loaded.annotations).toEqual({});
    expect(loaded.spec.linux?.resources).toEqual({ devices: [{ allow: false, access: 'rwm' }] });
    // Ambient caps missing from the inheritable set: accepted, with a warning (the kernel will not raise them).
    expect(loaded.warnings).toContainEqual(expect.stringMatching(/^process\.capabilities\.ambient: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE not in both/));
  });

  it('keeps hooks, annotations, resources, seccomp and cgroupsPath untouched', async () => {
    const hooks = {
      createRuntime: [{ path: '/usr/bin/hook', args: ['hook', 'create'], env: ['A=1'], timeout: 5 }],
      poststop: [{ path: '/bin/true' }],
    };
    const seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] };
    const dir = makeBundle(edit((s) => {
      s.hooks = hooks;
      s.annotations = { 'org.example.key': 'value' };
      s.linux.seccomp = seccomp;
      s.linux.cgroupsPath = '/cordon/test';
    }));
    const loaded = await loadBundle(dir);
    expect(loaded.hooks).toEqual(hooks);
    expect(loaded.annotations).toEqual({ 'org.example.key': 'value' });
    expect(loaded.spec.linux?.seccomp).toEqual(seccomp);
    expect(loaded.spec.linux?.cgroupsPath).toBe('/cordon/test');
  });

  it('handles binds, propagation options, devices, sysctl, user namespaces and 64-bit rlimits', async () => {
    const spec = edit((s) => {
      s.mounts.push(
        { destination: '/etc/hosts', type: 'bind', source: 'hosts', options: ['ro'] },
        { destination: '/data', type: 'none', source: path.join('data'), options: ['rbind', 'rprivate', 'nosuid'] },
      );
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux.devices = [
        { path: '/dev/fuse', type: 'u', major: 10, minor: 229 },
        { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o20640, uid: 5, gid: 6 },
        { path: '/dev/myfifo', type: 'p' },
      ];
      s.linux.sysctl = { 'net/ipv4/ip_forward': '1', 'kernel.shmmax': '1000', 'fs.mqueue.msg_max': '20', 'kernel.domainname': 'example.org' };
      s.linux.rootfsPropagation = 'rshared';
      s.process.user = { uid: 1000, gid: 1000, umask: 0o027, additionalGids: [10, 20] };
      delete s.process.capabilities;
    });
    // 18446744073709551615 must survive as RLIM_INFINITY: JSON.parse would round it to 2^64.
    const text = JSON.stringify(spec, null, 2).replace(
      '"rlimits": [',
      '"rlimits": [\n{ "type": "RLIMIT_CORE", "soft": 18446744073709551615, "hard": 18446744073709551615 },',
    );
    const dir = makeBundle(text);
    const { setup } = await loadBundle(dir, { noPivotRoot: true });
    expect(setup.noPivotRoot).toBe(true);
    expect(setup.rootPropagation).toBe(0x100000 | 0x4000);
    expect(setup.mounts[7]).toEqual({
      destination: '/etc/hosts', type: '', source: path.join(dir, 'hosts'), flags: 0x1001, clearedFlags: 0, propagationFlags: [], data: '', sourceIsFile: true,
    });
    expect(setup.mounts[8]).toEqual({
      destination: '/data', type: '', source: path.join(dir, 'data'), flags: 0x1000 | 0x4000 | 0x2, clearedFlags: 0, propagationFlags: [0x40000 | 0x4000], data: '', sourceIsFile: false,
    });
    expect(setup.devices).toEqual([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o640, uid: 5, gid: 6 },
      { path: '/dev/myfifo', type: 'p', major: 0, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
    ]);
    expect(setup.sysctl).toEqual({ 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000', 'fs.mqueue.msg_max': '20', 'kernel.domainname': 'example.org' });
    expect(setup.uidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
    expect(setup.gidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
    expect(setup.process.rlimits).toEqual([
      { name: 'RLIMIT_CORE', resource: 4, soft: 18446744073709551615n, hard: 18446744073709551615n },
      { name: 'RLIMIT_NOFILE', resource: 7, soft: 1024n, hard: 1024n },
    ]);
    expect(setup.process.capabilities).toEqual({ bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] });
    expect(setup.process).toMatchObject({ uid: 1000, gid: 1000, umask: 0o027, additionalGids: [10, 20] });
  });

  it('an explicit empty maskedPaths/readonlyPaths turns the defaults off', () => {
    const { setup } = specToSetup(edit((s) => {
      s.linux.maskedPaths = [];
      s.linux.readonlyPaths = [];
    }), bundle);
    expect(setup.maskedPaths).toEqual([]);
    expect(setup.readonlyPaths).toEqual([]);
  });

  it('leaves absent optional fields empty or undefined', () => {
    const { setup } = specToSetup(edit((s) => {
      delete s.linux.maskedPaths;
      delete s.linux.readonlyPaths;
      delete s.process.capabilities;
      delete s.process.rlimits;
      delete s.hostname;
      delete s.root.readonly;
      s.someFutureField = { anything: true }; // unknown top-level fields are ignored
      s.process.futureField = 1;
    }), bundle);
    // Left out (not empty): runc's lists, so /proc and /sys stay locked down by default.
    expect(setup.maskedPaths).toEqual([...RUNC_DEFAULT_MASKED_PATHS]);
    expect(setup.readonlyPaths).toEqual([...RUNC_DEFAULT_READONLY_PATHS]);
    expect(setup.process.capabilities).toEqual({ bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] });
    expect(setup.process.umask).toBeUndefined();
    expect(setup.process.oomScoreAdj).toBeUndefined();
    expect(setup.process.rlimits).toEqual([]);
    expect(setup.hostname).toBeUndefined();
    expect(setup.readonlyRootfs).toBe(false);
  });

  it('accepts 1.0.x-1.2.x versions with suffixes and warns on a later 1.x', () => {
    for (const v of ['1.0.0', '1.0.2-dev', '1.1.0', '1.2.1', '1.0.0-rc5']) {
      expect(specToSetup(edit((s) => { s.ociVersion = v; }), bundle).warnings.some((w) => w.startsWith('ociVersion'))).toBe(false);
    }
    expect(specToSetup(edit((s) => { s.ociVersion = '1.3.0'; }), bundle).warnings).toContainEqual(expect.stringMatching(/^ociVersion: version "1\.3\.0" is newer/));
  });

  it('resolves a relative mount destination against "/" with a warning', () => {
    const r = specToSetup(edit((s) => { s.mounts[0].destination = 'proc/../../proc/'; }), bundle);
    expect(r.setup.mounts[0].destination).toBe('/proc');
    expect(r.warnings).toContainEqual(expect.stringMatching(/^mounts\[0\]\.destination: relative destination "proc\/\.\.\/\.\.\/proc\/" is deprecated/));
  });
});

describe('mount options (runc parseMountOptions)', () => {
  it('lets a later option override an earlier one and records cleared flags', () => {
    expect(parseMountOptions(['ro', 'rw'])).toMatchObject({ flags: 0, clearedFlags: 0x1 });
    expect(parseMountOptions(['rw', 'ro'])).toMatchObject({ flags: 0x1, clearedFlags: 0 });
    expect(parseMountOptions(['nosuid', 'suid', 'nodev', 'exec'])).toMatchObject({ flags: 0x4, clearedFlags: 0x2 | 0x8 });
  });

  it('maps every flag option to its MS_ value', () => {
    const cases: [string, number][] = [
      ['ro', 0x1], ['nosuid', 0x2], ['nodev', 0x4], ['noexec', 0x8], ['sync', 0x10], ['remount', 0x20], ['mand', 0x40],
      ['dirsync', 0x80], ['nosymfollow', 0x100], ['noatime', 0x400], ['nodiratime', 0x800], ['bind', 0x1000],
      ['rbind', 0x5000], ['relatime', 0x200000], ['strictatime', 0x1000000],
    ];
    for (const [opt, flag] of cases) expect(parseMountOptions([opt]).flags, opt).toBe(flag);
    const cleared: [string, number][] = [
      ['rw', 0x1], ['suid', 0x2], ['dev', 0x4], ['exec', 0x8], ['async', 0x10], ['nomand', 0x40], ['atime', 0x400],
      ['diratime', 0x800], ['norelatime', 0x200000], ['nostrictatime', 0x1000000],
    ];
    for (const [opt, flag] of cleared) expect(parseMountOptions([opt]), opt).toMatchObject({ flags: 0, clearedFlags: flag });
  });

  it('collects propagation options in order and everything else as data', () => {
    const r = parseMountOptions(['private', 'mode=755', 'rslave', 'shared', 'x-foo', 'runbindable', 'unbindable', 'rshared', 'slave', 'rprivate']);
    expect(r.propagationFlags).toEqual([0x40000, 0x84000, 0x100000, 0x24000, 0x20000, 0x104000, 0x80000, 0x44000]);
    expect(r.data).toBe('mode=755,x-foo');
    expect(r.flags).toBe(0);
    // "defaults" is in runc's table with flag 0 and so, as in runc, falls through to data.
    expect(parseMountOptions(['defaults']).data).toBe('defaults');
  });

  it('reports tmpcopyup, idmap, ridmap and recursive attributes as unsupported', () => {
    const r = parseMountOptions(['tmpcopyup', 'ro', 'idmap', 'rro']);
    expect(r.unsupported.map((u) => [u.index, u.option])).toEqual([[0, 'tmpcopyup'], [2, 'idmap'], [3, 'rro']]);
    expect(r.flags).toBe(0x1);
    expect(r.data).toBe('');
  });
});

describe('config.json errors', () => {
  it('reports a missing config.json', async () => {
    const dir = makeBundle();
    await expect(loadBundle(dir)).rejects.toThrow(`config.json: no such file in bundle ${dir}`);
    await expect(loadBundle(dir)).rejects.toBeInstanceOf(ConfigError);
  });

  it('reports invalid JSON with line and column', async () => {
    const dir = makeBundle('{\n  "ociVersion": "1.2.0",\n    }\n');
    const err = await loadBundle(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^config\.json: invalid JSON at line 3 column 5: /);
    expect((err as ConfigError).issues).toEqual([{ path: 'config.json', message: expect.stringMatching(/^invalid JSON at line 3 column 5: unexpected "}"/) }]);
    expect(() => parseConfigJson('{"a": [1, 2,]}')).toThrow('config.json: invalid JSON at line 1 column 13');
    expect(() => parseConfigJson('{"a": 1} x')).toThrow('config.json: invalid JSON at line 1 column 10');
    expect(() => parseConfigJson('')).toThrow('config.json: invalid JSON at line 1 column 1: unexpected end of input');
    expect(() => parseConfigJson('{"a": "x\ny"}')).toThrow(/line 1 column 9: control character/);
  });

  it('parses big integers exactly and writes them back', () => {
    const v = parseConfigJson('{"n": 18446744073709551615, "s": 9007199254740991, "f": 1.5, "e": 1e3, "__proto__": 1}') as Record<string, unknown>;
    expect(v.n).toBe(18446744073709551615n);
    expect(v.s).toBe(9007199254740991);
    expect(v.f).toBe(1.5);
    expect(v.e).toBe(1000);
    expect(Object.keys(v)).toContain('__proto__');
    expect(stringifyConfigJson({ n: 18446744073709551615n, a: [1n] })).toBe('{"n":18446744073709551615,"a":[1]}');
  });

  it('rejects a non-object document', () => {
    expect(configError(() => specToSetup([], bundle)).issues).toEqual([{ path: 'config.json', message: 'expected a JSON object at the top level, got an array' }]);
  });

  it('ociVersion: missing, 2.x or not semver', () => {
    expectIssue(edit((s) => { delete s.ociVersion; }), 'ociVersion', 'required field is missing');
    expectIssue(edit((s) => { s.ociVersion = '2.0.0'; }), 'ociVersion', /^unsupported version "2\.0\.0"/);
    expectIssue(edit((s) => { s.ociVersion = '1.0'; }), 'ociVersion', /is not a semantic version/);
  });

  it('root.path: missing, not a directory, through a symlink', () => {
    const missingRoot = path.join(bundle, 'nope');
    expectIssue(edit((s) => { s.root.path = 'nope'; }), 'root.path', `rootfs "${missingRoot}" does not exist`);
    expectIssue(edit((s) => { s.root.path = '/x/rootfs'; }), 'root.path', 'rootfs "/x/rootfs" does not exist');
    expectIssue(edit((s) => { s.root.path = 'hosts'; }), 'root.path', `rootfs "${path.join(bundle, 'hosts')}" is not a directory`);
    expectIssue(edit((s) => { delete s.root; }), 'root', 'required field is missing');
    const dir = makeBundle();
    symlinkSync('rootfs', path.join(dir, 'link'));
    const err = configError(() => specToSetup(edit((s) => { s.root.path = 'link'; }), dir));
    expect(err.issues[0]).toEqual({ path: 'root.path', message: expect.stringMatching(/is reached through a symlink/) });
  });

  it('mounts: destination, bind source, options, type', () => {
    expectIssue(edit((s) => { s.mounts[3].destination = ''; }), 'mounts[3].destination', 'must be an absolute path, got ""');
    expectIssue(edit((s) => { delete s.mounts[2].destination; }), 'mounts[2].destination', 'required field is missing');
    const src = path.join(bundle, 'no-such-dir');
    expectIssue(edit((s) => { s.mounts.push({ destination: '/x', type: 'bind', source: 'no-such-dir', options: ['rbind'] }); }), 'mounts[7].source', `bind source "${src}" does not exist`);
    expectIssue(edit((s) => { s.mounts.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'tmpcopyup'] }); }), 'mounts[7].options[1]', /tmpcopyup.*not supported/);
    expectIssue(edit((s) => { s.mounts.push({ destination: '/x', source: '/tmp', options: ['bind', 'ridmap'] }); }), 'mounts[7].options[1]', /ridmap.*not supported/);
    expectIssue(edit((s) => { s.mounts.push({ destination: '/x', source: '/tmp', options: ['rbind', 'mode=755'] }); }), 'mounts[7].options', 'bind mounts cannot have filesystem-specific options ("mode=755")');
    expectIssue(edit((s) => { s.mounts.push({ destination: '/x', source: 'foo' }); }), 'mounts[7].type', /^required for a mount that is not a bind mount/);
    expectIssue(edit((s) => { s.mounts[1].options = ['nosuid', 5]; }), 'mounts[1].options[1]', 'expected a string, got 5');
  });

  it('linux.namespaces: unknown type, duplicate, bad path', () => {
    expectIssue(edit((s) => { s.linux.namespaces[2] = { type: 'foo' }; }), 'linux.namespaces[2].type', /^unknown namespace type "foo"/);
    expectIssue(edit((s) => { s.linux.namespaces.push({ type: 'pid' }); }), 'linux.namespaces[6].type', 'duplicate namespace "pid" (already at linux.namespaces[0])');
    expectIssue(edit((s) => { s.linux.namespaces[1].path = 'proc/1/ns/net'; }), 'linux.namespaces[1].path', 'must be an absolute path, got "proc/1/ns/net"');
    expectIssue(edit((s) => { s.linux.namespaces[1].path = '/proc/999999999/ns/net'; }), 'linux.namespaces[1].path', 'namespace path "/proc/999999999/ns/net" does not exist');
    // Joining an existing namespace by path works.
    const { setup } = specToSetup(edit((s) => { s.linux.namespaces[1].path = '/proc/self/ns/net'; }), bundle);
    expect(setup.namespaces[1]).toEqual({ type: 'network', path: '/proc/self/ns/net' });
  });

  it('user namespace mappings: required for a new user namespace, refused without one', () => {
    const err = expectIssue(edit((s) => { s.linux.namespaces.push({ type: 'user' }); }), 'linux.uidMappings', 'required when creating a user namespace');
    expect(err.message).toContain('linux.uidMappings: required when creating a user namespace');
    expect(err.issues).toContainEqual({ path: 'linux.gidMappings', message: 'required when creating a user namespace' });
    expectIssue(edit((s) => { s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }), 'linux.uidMappings', /no "user" namespace/);
    expectIssue(edit((s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 10 }, { containerID: 5, hostID: 5000, size: 10 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 0 }];
    }), 'linux.uidMappings[1]', 'container ids overlap linux.uidMappings[0]');
    expectIssue(edit((s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.process.user.uid = 1000;
    }), 'process.user.uid', '1000 is not mapped in linux.uidMappings');
  });

  it('hostname and domainname need a UTS namespace', () => {
    const noUts = (s: Json) => { s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== 'uts'); };
    expectIssue(edit(noUts), 'hostname', 'unable to set hostname without a private UTS namespace (add a "uts" namespace)');
    expectIssue(edit((s) => { noUts(s); delete s.hostname; s.domainname = 'example.org'; }), 'domainname', /^unable to set domainname without a private UTS namespace/);
    expectIssue(edit((s) => { s.hostname = 'h'.repeat(65); }), 'hostname', 'must be at most 64 bytes, got 65');
  });

  it('linux.sysctl: only namespaced sysctls, with the namespace present', () => {
    const without = (t: string) => (s: Json) => { s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== t); };
    expectIssue(edit((s) => { without('network')(s); s.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; }), 'linux.sysctl["net.ipv4.ip_forward"]', /^sysctl "net\.ipv4\.ip_forward" is not allowed in the host's network namespace/);
    expectIssue(edit((s) => { s.linux.namespaces[1].path = '/proc/self/ns/net'; s.linux.sysctl = { 'net/ipv4/ip_forward': '1' }; }), 'linux.sysctl["net/ipv4/ip_forward"]', /host's network namespace/);
    expectIssue(edit((s) => { without('ipc')(s); s.linux.sysctl = { 'kernel.shmmax': '1' }; }), 'linux.sysctl["kernel.shmmax"]', /^sysctl "kernel\.shmmax" is not allowed in the host's ipc namespace/);
    expectIssue(edit((s) => { s.linux.sysctl = { 'kernel.foo': '1' }; }), 'linux.sysctl["kernel.foo"]', 'sysctl "kernel.foo" is not in a separate kernel namespace');
    expectIssue(edit((s) => { s.linux.sysctl = { 'vm.swappiness': '1' }; }), 'linux.sysctl["vm.swappiness"]', 'sysctl "vm.swappiness" is not in a separate kernel namespace');
    expectIssue(edit((s) => { s.linux.sysctl = { 'kernel.hostname': 'x' }; }), 'linux.sysctl["kernel.hostname"]', /conflicts with the OCI "hostname" field/);
    expectIssue(edit((s) => { s.linux.sysctl = { 'net.ipv4.ip_forward': 1 }; }), 'linux.sysctl["net.ipv4.ip_forward"]', 'expected a string, got 1');
    expectIssue(edit((s) => { s.linux.sysctl = { 'net/../kernel/x': '1' }; }), 'linux.sysctl["net/../kernel/x"]', 'invalid sysctl name "net/../kernel/x"');
    expect(sysctlDottedName('net/ipv4/conf/eno2.100/rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
    expect(sysctlDottedName('net.ipv4.conf.eno2/100.rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
  });

  it('process.rlimits: unknown, duplicate, soft > hard, out of range', () => {
    const rl = (...r: Json[]) => edit((s) => { s.process.rlimits = r; });
    const nofile = { type: 'RLIMIT_NOFILE', soft: 1, hard: 2 };
    expectIssue(rl(nofile, { type: 'RLIMIT_FOO', soft: 1, hard: 1 }), 'process.rlimits[1].type', 'unknown rlimit "RLIMIT_FOO"');
    expectIssue(rl(nofile, nofile), 'process.rlimits[1].type', 'duplicate rlimit "RLIMIT_NOFILE" (already at process.rlimits[0])');
    expectIssue(rl({ type: 'RLIMIT_NOFILE', soft: 2048, hard: 1024 }), 'process.rlimits[0].soft', 'soft limit 2048 is greater than hard limit 1024');
    expectIssue(rl({ type: 'RLIMIT_NOFILE', soft: -1, hard: 1024 }), 'process.rlimits[0].soft', 'expected a non-negative integer, got -1');
    expectIssue(rl({ type: 'RLIMIT_NOFILE', soft: 1, hard: 18446744073709551616n }), 'process.rlimits[0].hard', 'must be at most 18446744073709551615, got 18446744073709551616');
    expectIssue(rl({ type: 'RLIMIT_NOFILE', soft: 1 }), 'process.rlimits[0].hard', 'required field is missing');
  });

  it('process.capabilities: unknown names are errors, names the kernel lacks are skipped', () => {
    expectIssue(edit((s) => { s.process.capabilities.bounding[1] = 'CAP_FOO'; }), 'process.capabilities.bounding[1]', 'unknown capability "CAP_FOO"');
    expectIssue(edit((s) => { s.process.capabilities.effective = 'CAP_KILL'; }), 'process.capabilities.effective', 'expected an array, got "CAP_KILL"');
    const issues = new Issues();
    const caps = convertCapabilities(issues, { bounding: ['CAP_KILL', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE', 'CAP_KILL'] }, 38);
    expect(issues.errors).toEqual([]);
    expect(caps?.bounding).toEqual([5]);
    expect(issues.warnings).toEqual([
      'process.capabilities.bounding[1]: capability "CAP_BPF" is not supported by the running kernel (cap_last_cap is 38); skipped',
      'process.capabilities.bounding[2]: capability "CAP_CHECKPOINT_RESTORE" is not supported by the running kernel (cap_last_cap is 38); skipped',
    ]);
    const r = specToSetup(edit((s) => { s.process.capabilities.bounding.push('CAP_BPF'); }), bundle, { capLastCap: 38 });
    expect(r.setup.process.capabilities?.bounding).toEqual([29, 5, 10]);
    expect(r.warnings).toContainEqual(expect.stringMatching(/^process\.capabilities\.bounding\[3\]: capability "CAP_BPF" is not supported/));
  });

  it('process.user: type and range errors', () => {
    expectIssue(edit((s) => { s.process.user.uid = 'abc'; }), 'process.user.uid', 'expected a non-negative integer, got "abc"');
    expectIssue(edit((s) => { s.process.user.gid = -5; }), 'process.user.gid', 'expected a non-negative integer, got -5');
    expectIssue(edit((s) => { s.process.user.gid = 1.5; }), 'process.user.gid', 'expected a non-negative integer, got 1.5');
    expectIssue(edit((s) => { s.process.user.uid = 2 ** 32; }), 'process.user.uid', 'must be at most 4294967295, got 4294967296');
    expectIssue(edit((s) => { s.process.user.umask = 0o1000; }), 'process.user.umask', 'must be at most 511, got 512');
    expectIssue(edit((s) => { s.process.user.additionalGids = [1, 'x']; }), 'process.user.additionalGids[1]', 'expected a non-negative integer, got "x"');
    expectIssue(edit((s) => { s.process.user.additionalGids = [-3n]; }), 'process.user.additionalGids[0]', 'expected a non-negative integer, got -3');
  });

  it('process: args, env, cwd, oomScoreAdj, terminal', () => {
    expectIssue(edit((s) => { s.process.args = []; }), 'process.args', 'must have at least one element');
    expectIssue(edit((s) => { delete s.process.args; }), 'process.args', 'must have at least one element');
    expectIssue(edit((s) => { s.process.args = ['', 'x']; }), 'process.args[0]', /^must not be empty/);
    expectIssue(edit((s) => { s.process.env.push('FOO'); }), 'process.env[2]', 'must be "KEY=VALUE" with a non-empty KEY, got "FOO"');
    expectIssue(edit((s) => { s.process.env.push('=x'); }), 'process.env[2]', 'must be "KEY=VALUE" with a non-empty KEY, got "=x"');
    expectIssue(edit((s) => { s.process.cwd = 'tmp'; }), 'process.cwd', 'must be an absolute path, got "tmp"');
    expectIssue(edit((s) => { delete s.process.cwd; }), 'process.cwd', 'required field is missing');
    expectIssue(edit((s) => { s.process.oomScoreAdj = 1001; }), 'process.oomScoreAdj', 'must be between -1000 and 1000, got 1001');
    expectIssue(edit((s) => { s.process.terminal = 'yes'; }), 'process.terminal', 'expected true or false, got "yes"');
    expectIssue(edit((s) => { delete s.process; }), 'process', 'required field is missing');
    expectIssue(edit((s) => { s.process.selinuxLabel = 'system_u:system_r:container_t:s0'; }), 'process.selinuxLabel', /SELinux is disabled/, { selinuxEnabled: false });
    expectIssue(edit((s) => { s.process.scheduler = { policy: 'SCHED_OTHER', priority: 5 }; }), 'process.scheduler.priority', 'can only be set for the SCHED_FIFO or SCHED_RR policy');
    expectIssue(edit((s) => { s.process.ioPriority = { class: 'IOPRIO_CLASS_X', priority: 0 }; }), 'process.ioPriority.class', /^unknown I\/O priority class/);
    const { setup } = specToSetup(edit((s) => { s.process.oomScoreAdj = -1000; }), bundle);
    expect(setup.process.oomScoreAdj).toBe(-1000);
  });

  it('linux.devices: type, path, major/minor', () => {
    const dev = (d: Json) => edit((s) => { s.linux.devices = [{ path: '/dev/null2', type: 'c', major: 1, minor: 3 }, d]; });
    expectIssue(dev({ path: '/dev/x', type: 'x', major: 1, minor: 1 }), 'linux.devices[1].type', 'unknown device type "x" (expected c, b, u or p)');
    expectIssue(dev({ path: 'dev/x', type: 'c', major: 1, minor: 1 }), 'linux.devices[1].path', 'must be an absolute path, got "dev/x"');
    expectIssue(dev({ path: '/dev/x', type: 'b', minor: 1 }), 'linux.devices[1].major', 'required field is missing');
    expectIssue(dev({ path: '/dev/null2', type: 'c', major: 1, minor: 3 }), 'linux.devices[1].path', 'duplicate device path "/dev/null2" (already at linux.devices[0])');
    expectIssue(dev({ path: '/dev/x', type: 'c', major: 1, minor: 1, fileMode: '0666' }), 'linux.devices[1].fileMode', 'expected a non-negative integer, got "0666"');
  });

  it('maskedPaths / readonlyPaths must be absolute and need a mount namespace', () => {
    expectIssue(edit((s) => { s.linux.maskedPaths[2] = 'proc/kcore'; }), 'linux.maskedPaths[2]', 'must be an absolute path, got "proc/kcore"');
    expectIssue(edit((s) => { s.linux.readonlyPaths[0] = 'x'; }), 'linux.readonlyPaths[0]', 'must be an absolute path, got "x"');
    const err = expectIssue(
      edit((s) => { s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== 'mount'); }),
      'linux.maskedPaths',
      'unable to restrict sys entries without a private mount namespace (add a "mount" namespace)',
    );
    expect(err.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['mounts', 'root.readonly', 'linux.readonlyPaths']));
  });

  it('hooks: absolute path, positive integer timeout', () => {
    expectIssue(edit((s) => { s.hooks = { poststart: [{ path: 'hook' }] }; }), 'hooks.poststart[0].path', 'must be an absolute path, got "hook"');
    expectIssue(edit((s) => { s.hooks = { createRuntime: [{ path: '/h', timeout: 0 }] }; }), 'hooks.createRuntime[0].timeout', 'must be a positive integer (seconds), got 0');
    expectIssue(edit((s) => { s.hooks = { createRuntime: [{ path: '/h' }, { path: '/h', timeout: '5' }] }; }), 'hooks.createRuntime[1].timeout', 'expected an integer, got "5"');
    expectIssue(edit((s) => { s.hooks = { poststop: [{ args: ['x'] }] }; }), 'hooks.poststop[0].path', 'required field is missing');
    expectIssue(edit((s) => { s.hooks = { poststop: [{ path: '/h', env: ['NOEQUALS'] }] }; }), 'hooks.poststop[0].env[0]', /KEY=VALUE/);
  });

  it('linux.rootfsPropagation: known values, default, unsafe with noPivotRoot', () => {
    expectIssue(edit((s) => { s.linux.rootfsPropagation = 'sideways'; }), 'linux.rootfsPropagation', /^unknown propagation "sideways"/);
    expectIssue(edit((s) => { s.linux.rootfsPropagation = 'rprivate'; }), 'linux.rootfsPropagation', '"rprivate" is not safe without pivot_root (noPivotRoot is set)', { noPivotRoot: true });
    const flags = (v: string) => specToSetup(edit((s) => { s.linux.rootfsPropagation = v; }), bundle).setup.rootPropagation;
    expect(flags('private')).toBe(0x40000);
    expect(flags('rprivate')).toBe(0x44000);
    expect(flags('slave')).toBe(0x80000);
    expect(flags('unbindable')).toBe(0x20000);
    expect(flags('runbindable')).toBe(0x24000);
    expect(flags('shared')).toBe(0x100000);
  });

  it('other sections kept as-is are still checked for shape', () => {
    expectIssue(edit((s) => { s.annotations = { a: 1 }; }), 'annotations.a', 'expected a string, got 1');
    expectIssue(edit((s) => { s.linux.resources = []; }), 'linux.resources', 'expected an object, got an array');
    expectIssue(edit((s) => { s.linux.cgroupsPath = 7; }), 'linux.cgroupsPath', 'expected a string, got 7');
    expectIssue(edit((s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_NOPE' }; }), 'linux.seccomp.defaultAction', 'unknown seccomp action "SCMP_ACT_NOPE"');
    expectIssue(edit((s) => { s.linux.timeOffsets = { monotonic: { secs: 1 } }; }), 'linux.timeOffsets', /no "time" namespace/);
    expectIssue(edit((s) => { s.linux.personality = { domain: 'LINUX64' }; }), 'linux.personality.domain', /^unknown personality domain "LINUX64"/);
  });

  it('seccomp syscall names: an injected resolver warns about and drops unknown ones; without one they are kept as given', () => {
    const spec = edit((s) => {
      s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO' }] };
    });
    const plain = specToSetup(spec, bundle);
    expect(plain.setup.seccomp?.rules[0].names).toEqual(['mkdir', 'no_such_syscall']);
    expect(plain.warnings.filter((w) => w.startsWith('linux.seccomp'))).toEqual([]);
    const asked: string[] = [];
    const checked = specToSetup(spec, bundle, { knownSyscall: (n: string) => (asked.push(n), n !== 'no_such_syscall') });
    expect(checked.setup.seccomp?.rules[0].names).toEqual(['mkdir']);
    expect(checked.warnings).toContain('linux.seccomp.syscalls[0].names[1]: unknown syscall "no_such_syscall" skipped');
    expect(asked).toContain('no_such_syscall');
  });

  it('reports every error at once', () => {
    const spec = edit((s) => {
      s.process.rlimits.push({ type: 'RLIMIT_FOO', soft: 1, hard: 1 });
      s.linux.namespaces[2] = { type: 'foo' };
      s.mounts[3].destination = '';
      s.root.path = '/x/rootfs';
      s.process.user.uid = 'abc';
      s.process.cwd = 'relative';
    });
    const err = configError(() => specToSetup(spec, bundle));
    const expected = [
      'root.path: rootfs "/x/rootfs" does not exist',
      'linux.namespaces[2].type: unknown namespace type "foo"',
      'mounts[3].destination: must be an absolute path, got ""',
      'process.cwd: must be an absolute path, got "relative"',
      'process.user.uid: expected a non-negative integer, got "abc"',
      'process.rlimits[1].type: unknown rlimit "RLIMIT_FOO"',
    ];
    for (const line of expected) expect(err.message).toContain(line);
    expect(err.issues.length).toBeGreaterThanOrEqual(expected.length);
    expect(err.message.split('\n')[0]).toBe(`config.json has ${err.issues.length} problems:`);
    expect(err.name).toBe('ConfigError');
    expect(err).toBeInstanceOf(Error);
  });
});
