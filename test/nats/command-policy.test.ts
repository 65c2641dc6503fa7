/**
 * The command policy's model without NATS: a policy file is validated in full (every bad field named, unknown
 * keys refused), defaults are the documented ones, a caller's identity (token, Nats-Request-Info, nobody) maps
 * to its grant, and the checks refuse what each rule is for — naming rule and field — unless the grant
 * bypasses that rule.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../../actors/command-authorize.js';
import { BUILTIN_GRANTS, CommandPolicyError, PolicyDeniedError, defaultPolicy, identifyCaller, loadPolicyFile, parsePolicy, resolvePolicy, tokenDigest } from '../../actors/command-policy.js';
import { specToSetup } from '../../config/index.js';
import { COMMAND_VERBS } from '../../events/command-api.js';
import { ROOTFS as ROOTFS_PATH, defaultSpec } from '../fixtures/bundle.js';

const ROOTFS = realpathSync(ROOTFS_PATH);

const tmp = mkdtempSync('/tmp/cordon-policy-unit-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('policy validation', () => {
  const bad: Array<[string, unknown, string, RegExp]> = [
    ['not an object', [], '(top level)', /expected an object/],
    ['an unknown key', { trustedNetwork: true, bundleRoot: ['/srv'] }, 'bundleRoot', /unknown field/],
    ['trustedNetwork not a boolean', { trustedNetwork: 'yes' }, 'trustedNetwork', /true or false/],
    ['a relative bundle root', { bundleRoots: ['srv/bundles'] }, 'bundleRoots[0]', /absolute path/],
    ['"/" as a host path', { hostPaths: ['/'] }, 'hostPaths[0]', /whole host/],
    ['an unknown grant key', { grants: { ops: { verbs: ['*'], bypas: [] } } }, 'grants.ops.bypas', /unknown field/],
    ['an unknown verb', { grants: { ops: { verbs: ['create', 'reboot'] } } }, 'grants.ops.verbs[1]', /unknown verb "reboot"/],
    ['an unknown rule', { grants: { ops: { bypass: ['hooks', 'everything'] } } }, 'grants.ops.bypass[1]', /unknown rule "everything"/],
    ['an unknown capability', { grants: { ops: { capabilities: ['CAP_FLY'] } } }, 'grants.ops.capabilities[0]', /unknown capability/],
    ['a built-in grant redefined', { grants: { default: { verbs: ['*'] } } }, 'grants.default', /built-in grant/],
    ['a token that is not a sha256', { tokens: [{ name: 'ci', sha256: 'secret', grant: 'default' }] }, 'tokens[0].sha256', /64 hex digits/],
    ['a token of an unknown grant', { tokens: [{ name: 'ci', sha256: tokenDigest('x'), grant: 'ops' }] }, 'tokens[0].grant', /unknown grant "ops"/],
    ['a token without a name', { tokens: [{ sha256: tokenDigest('x'), grant: 'default' }] }, 'tokens[0].name', /non-empty string/],
    ['the same token twice', { tokens: [{ name: 'a', sha256: tokenDigest('x'), grant: 'default' }, { name: 'b', sha256: tokenDigest('x').toUpperCase(), grant: 'none' }] }, 'tokens[1].sha256', /same token as tokens\[0\]/],
    ['a NATS user with an unknown key', { natsUsers: [{ account: 'OPS', name: 'alice', grant: 'default' }] }, 'natsUsers[0].name', /unknown field/],
    ['a NATS user without an account', { natsUsers: [{ user: 'alice', grant: 'default' }] }, 'natsUsers[0].account', /non-empty string/],
    ['anonymous of an unknown grant', { anonymous: 'guest' }, 'anonymous', /unknown grant "guest"/],
  ];
  for (const [what, raw, field, msg] of bad) {
    it(`refuses ${what}, naming ${field}`, () => {
      let err: unknown;
      try {
        parsePolicy(raw, 'test.json');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CommandPolicyError);
      expect(err).toMatchObject({ code: 'BadRequest', field });
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).toContain(`command policy test.json: ${field}: `);
    });
  }

  it('defaults: no trusted network, /var/lib/cordon/bundles, no host paths, anonymous gets "default" (every verb, nothing bypassed)', () => {
    const p = defaultPolicy();
    expect(p).toMatchObject({ trustedNetwork: false, bundleRoots: ['/var/lib/cordon/bundles'], hostPaths: [], anonymous: 'default', tokens: [], natsUsers: [] });
    expect(p.grants.default).toEqual({ verbs: COMMAND_VERBS, bypass: [], capabilities: [], hostPaths: [] });
    expect(Object.keys(p.grants).sort()).toEqual(Object.keys(BUILTIN_GRANTS).sort());
  });

  it('a full file is read: grants with "*", capabilities made canonical, tokens lower-cased; a file that is not JSON names itself', () => {
    const file = join(tmp, 'policy.json');
    writeFileSync(
      file,
      JSON.stringify({
        trustedNetwork: true,
        bundleRoots: ['/srv/bundles/'],
        hostPaths: ['/srv/data'],
        anonymous: 'none',
        grants: { ops: { verbs: ['*'], bypass: ['hooks'], capabilities: ['CAP_SYS_PTRACE'], hostPaths: ['/srv/ops'] }, reader: { verbs: ['list', 'state'] } },
        tokens: [{ name: 'ci', sha256: tokenDigest('s3cret').toUpperCase(), grant: 'ops' }],
        natsUsers: [{ account: 'OPS', user: 'alice', grant: 'ops' }, { account: 'APP', grant: 'reader' }],
      }),
    );
    const p = loadPolicyFile(file);
    expect(p.bundleRoots).toEqual(['/srv/bundles']);
    expect(p.grants.ops).toEqual({ verbs: COMMAND_VERBS, bypass: ['hooks'], capabilities: ['CAP_SYS_PTRACE'], hostPaths: ['/srv/ops'] });
    expect(p.grants.reader.verbs).toEqual(['list', 'state']);
    expect(p.tokens[0].sha256).toBe(tokenDigest('s3cret'));
    expect(resolvePolicy(p)).toBe(p);
    writeFileSync(file, '{ "trustedNetwork": true,');
    expect(() => loadPolicyFile(file)).toThrow(/command policy .*policy\.json: \(file\): not JSON/);
  });
});

describe('caller identity', () => {
  const policy = parsePolicy({
    anonymous: 'none',
    grants: { ops: { verbs: ['*'] } },
    tokens: [{ name: 'ci', sha256: tokenDigest('s3cret'), grant: 'ops' }],
    natsUsers: [{ account: 'OPS', user: 'alice', grant: 'ops' }, { account: 'APP', grant: 'default' }],
  });

  it('a known token is its grant; an unknown one is refused (rule identity), never taken for anonymous', () => {
    expect(identifyCaller(policy, { token: 's3cret' })).toMatchObject({ label: 'token:ci', grantName: 'ops' });
    const e = (() => {
      try {
        identifyCaller(policy, { token: 'guess' });
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(PolicyDeniedError);
    expect(e).toMatchObject({ code: 'PermissionDenied', rule: 'identity', field: 'Cordon-Token' });
  });

  it('Nats-Request-Info: the account and user, else the account alone, else anonymous; an unreadable header is refused', () => {
    const info = (x: object) => ({ requestInfo: JSON.stringify(x) });
    expect(identifyCaller(policy, info({ acc: 'OPS', user: 'alice', rtt: 1 }))).toMatchObject({ label: 'nats:OPS/alice', grantName: 'ops' });
    expect(identifyCaller(policy, info({ acc: 'OPS', user: 'bob' }))).toMatchObject({ label: 'nats:OPS/bob', grantName: 'none' });
    expect(identifyCaller(policy, info({ acc: 'APP', user: 'carol' }))).toMatchObject({ label: 'nats:APP/carol', grantName: 'default' });
    expect(identifyCaller(policy, info({ acc: 'APP' }))).toMatchObject({ label: 'nats:APP', grantName: 'default' });
    expect(identifyCaller(policy, {})).toMatchObject({ label: 'anonymous', grantName: 'none' });
    expect(() => identifyCaller(policy, { requestInfo: 'not json' })).toThrow(/policy rule "identity"/);
    expect(() => identifyCaller(policy, info({ user: 'alice' }))).toThrow(PolicyDeniedError);
  });
});

describe('checks', () => {
  const roots = join(tmp, 'roots');
  const data = join(tmp, 'data');
  mkdirSync(join(roots, 'b1'), { recursive: true });
  mkdirSync(data, { recursive: true });
  symlinkSync('/etc', join(roots, 'escape'));
  const policy = parsePolicy({ bundleRoots: [roots], grants: { ops: { verbs: ['*'], bypass: ['hooks'], capabilities: ['CAP_SYS_PTRACE'], hostPaths: [data] } } });
  const authz = new Authorizer(policy, join(tmp, 'svc-bundles'));
  const anon = identifyCaller(policy, {});
  const ops = { ...anon, label: 'token:ops', grantName: 'ops', grant: policy.grants.ops };
  const denied = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyDeniedError);
      return e as PolicyDeniedError;
    }
    throw new Error('expected a refusal');
  };
  const config = (edit: (s: ReturnType<typeof defaultSpec>) => void) => {
    const s = defaultSpec();
    s.root.path = ROOTFS;
    edit(s);
    return s as unknown as Record<string, unknown>;
  };
  const check = (c: typeof anon, raw: Record<string, unknown>) => authz.createConfig(c, raw, specToSetup(raw, join(roots, 'b1')), 'root.path');

  it('a bundle outside the roots, or reached through a symlink out of them, is refused (bundleRoots)', () => {
    expect(authz.bundleDir(anon, join(roots, 'b1'))).toBe(join(roots, 'b1'));
    expect(denied(() => authz.bundleDir(anon, '/etc'))).toMatchObject({ rule: 'bundleRoots', field: 'bundle' });
    expect(denied(() => authz.bundleDir(anon, join(roots, 'escape')))).toMatchObject({ rule: 'bundleRoots', field: 'bundle' });
    expect(denied(() => authz.bundleDir(anon, join(roots, '..', 'data')))).toMatchObject({ rule: 'bundleRoots' });
    mkdirSync(join(roots, 'b2'));
    symlinkSync('/etc/shadow', join(roots, 'b2', 'config.json'));
    expect(denied(() => authz.bundleDir(anon, join(roots, 'b2')))).toMatchObject({ rule: 'bundleRoots', field: 'bundle' });
  });

  it('each rule refuses its escape, naming the field; the default config passes and comes back with its paths pinned', () => {
    // The busybox rootfs lives outside the roots: rootfs is refused for it, so the rest are checked with it allowed.
    expect(denied(() => check(anon, config(() => {})))).toMatchObject({ rule: 'rootfs', field: 'root.path' });
    const local = new Authorizer(parsePolicy({ bundleRoots: [roots, ROOTFS], grants: { ops: { verbs: ['*'], bypass: ['hooks'], capabilities: ['CAP_SYS_PTRACE'], hostPaths: [data] } } }), join(tmp, 'svc'));
    const lcheck = (c: typeof anon, raw: Record<string, unknown>) => local.createConfig(c, raw, specToSetup(raw, join(roots, 'b1')), 'root.path');
    expect(lcheck(anon, config(() => {}))).toMatchObject({ root: { path: ROOTFS } });
    const cases: Array<[string, (s: ReturnType<typeof defaultSpec>) => void, string, string]> = [
      ['hooks', (s) => void (s.hooks = { poststop: [{ path: '/bin/true' }] }), 'hooks', 'hooks.poststop[0]'],
      ['a bind of /', (s) => void s.mounts.push({ destination: '/host', type: 'bind', source: '/', options: ['rbind'] }), 'bindMounts', 'mounts[7].source'],
      ['a bind through a symlink out of the roots', (s) => void s.mounts.push({ destination: '/host', source: join(roots, 'escape'), options: ['bind'] }), 'bindMounts', 'mounts[7].source'],
      ['no pid namespace', (s) => void (s.linux.namespaces = s.linux.namespaces?.filter((n) => n.type !== 'pid')), 'namespaces', 'linux.namespaces'],
      ['no network namespace', (s) => void (s.linux.namespaces = s.linux.namespaces?.filter((n) => n.type !== 'network')), 'namespaces', 'linux.namespaces'],
      ['joining a namespace by path', (s) => void s.linux.namespaces?.splice(0, 1, { type: 'pid', path: `/proc/${process.pid}/ns/pid` }), 'namespaces', 'linux.namespaces[0].path'],
      ['CAP_SYS_ADMIN', (s) => void s.process.capabilities?.permitted?.push('CAP_SYS_ADMIN'), 'capabilities', 'process.capabilities.permitted[3]'],
      ['a block device node', (s) => void (s.linux.devices = [{ path: '/dev/sda', type: 'b', major: 8, minor: 0 }]), 'devices', 'linux.devices[0]'],
      ['a rule allowing every device', (s) => void s.linux.resources?.devices?.push({ allow: true, access: 'rwm' }), 'devices', 'linux.resources.devices[1]'],
      ['a rule allowing block devices rw', (s) => void s.linux.resources?.devices?.push({ allow: true, type: 'b', major: 8, access: 'rw' }), 'devices', 'linux.resources.devices[1]'],
      ['an ext4 mount of a host disk', (s) => void s.mounts.push({ destination: '/disk', type: 'ext4', source: '/dev/sda1' }), 'mountTypes', 'mounts[7].type'],
      ['a second proc', (s) => void s.mounts.push({ destination: '/p2', type: 'proc', source: 'proc' }), 'mountTypes', 'mounts[7].destination'],
      ['a writable sysfs', (s) => void (s.mounts[5].options = ['nosuid']), 'mountTypes', 'mounts[5].options'],
      ['/proc/sys not read-only', (s) => void (s.linux.readonlyPaths = ['/proc/bus']), 'maskedPaths', 'linux.readonlyPaths'],
      ['/proc/kcore not masked', (s) => void (s.linux.maskedPaths = []), 'maskedPaths', 'linux.maskedPaths'],
      ['a cgroupsPath', (s) => void (s.linux.cgroupsPath = '/system.slice'), 'cgroupsPath', 'linux.cgroupsPath'],
      ['cgroup.procs through unified', (s) => void (s.linux.resources = { ...s.linux.resources, unified: { 'pids.max': '10', 'cgroup.procs': '1' } }), 'cgroupFiles', 'linux.resources.unified["cgroup.procs"]'],
      ['a network annotation', (s) => void (s.annotations = { 'org.cordon.network': '{"interfaces":[{"type":"loopback"}]}' }), 'network', 'annotations["org.cordon.network"]'],
    ];
    for (const [what, edit, rule, field] of cases) {
      const e = denied(() => lcheck(anon, config(edit)));
      expect({ what, rule: e.rule, field: e.field }).toEqual({ what, rule, field });
      expect(e.message).toContain(`policy rule "${rule}": `);
      expect(e.message).toContain(`${field} refused for caller "anonymous" (grant "default")`);
    }
    // The grant's own bypass and allowances.
    expect(() => lcheck(ops, config((s) => void (s.hooks = { prestart: [{ path: '/bin/true' }] })))).not.toThrow();
    expect(() => lcheck(ops, config((s) => void s.process.capabilities?.bounding?.push('CAP_SYS_PTRACE')))).not.toThrow();
    const pinned = lcheck(ops, config((s) => void s.mounts.push({ destination: '/data', source: data, options: ['bind'] })));
    expect((pinned.mounts as Array<{ source: string }>)[7].source).toBe(data);
    expect(denied(() => lcheck(ops, config((s) => void s.process.capabilities?.bounding?.push('CAP_SYS_ADMIN'))))).toMatchObject({ rule: 'capabilities', field: 'process.capabilities.bounding[3]' });
    expect(denied(() => lcheck(anon, config((s) => void s.mounts.push({ destination: '/data', source: data, options: ['bind'] }))))).toMatchObject({ rule: 'bindMounts' });
  });

  it('exec: caps and process capabilities beyond the default set are refused unless granted; update: device rules', () => {
    expect(denied(() => authz.exec(anon, { id: 'x', args: ['sh'], caps: ['CAP_KILL', 'CAP_SYS_ADMIN'] }, undefined))).toMatchObject({ rule: 'capabilities', field: 'caps[1]' });
    expect(denied(() => authz.exec(anon, { id: 'x', process: { capabilities: { ambient: ['CAP_SYS_MODULE'] } } }, undefined))).toMatchObject({ rule: 'capabilities', field: 'process.capabilities.ambient[0]' });
    expect(() => authz.exec(ops, { id: 'x', args: ['sh'], caps: ['CAP_SYS_PTRACE'] }, undefined)).not.toThrow();
    expect(denied(() => authz.exec(ops, { id: 'x', args: ['sh'], caps: ['CAP_SYS_ADMIN'] }, undefined))).toMatchObject({ rule: 'capabilities' });
    expect(denied(() => authz.update(anon, { devices: [{ allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' }] }))).toMatchObject({ rule: 'devices', field: 'resources.devices[0]' });
    expect(() => authz.update(anon, { devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' }], unified: { 'memory.max': '1G' } })).not.toThrow();
    expect(denied(() => authz.update(anon, { unified: { 'cgroup.freeze': '1' } }))).toMatchObject({ rule: 'cgroupFiles', field: 'resources.unified["cgroup.freeze"]' });
  });

  it('verbs outside the grant are refused (rule verbs), and host paths of checkpoint outside the allowed ones (hostPaths)', () => {
    const p = parsePolicy({ grants: { reader: { verbs: ['list', 'state'] } }, anonymous: 'reader', bundleRoots: [roots] });
    const a = new Authorizer(p, join(tmp, 'svc'));
    const reader = identifyCaller(p, {});
    expect(() => a.verb(reader, 'list')).not.toThrow();
    expect(denied(() => a.verb(reader, 'create'))).toMatchObject({ rule: 'verbs' });
    expect(denied(() => a.hostPath(reader, 'imagePath', '/etc/cron.d/x'))).toMatchObject({ rule: 'hostPaths', field: 'imagePath' });
    expect(() => a.hostPath(reader, 'imagePath', join(roots, 'img', 'new'))).not.toThrow();
  });
});
