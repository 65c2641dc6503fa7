/**
 * Subject permissions on a real nats-server (the README's example config): a read-only events user cannot
 * send commands — the request fails at once with permission-denied and nothing happens on the host — but can
 * read CORDON_EVENTS and discover hosts; an operator authenticated with an nkey can drive containers; the
 * supervisor's own user serves commands and publishes events. A second server requires mutual TLS (a CA and
 * certificates made with openssl here): the operator drives the host over it, a client without a
 * certificate is refused.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NatsConnection, nkeys } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CordonClient, CordonCommandError, EVENTS_STREAM } from '../../client/cordon-client.js';
import { connectNats } from '../../events/nats-connection.js';
import { newEvent } from '../../events/schema.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { type TestHost, failure, startHost } from './hosts.js';

const operatorKey = nkeys.createUser();
const seed = new TextDecoder().decode(operatorKey.getSeed());

/** The permissions of the README's example, with the operator on an nkey. */
const AUTH = `
authorization {
  users: [
    { user: supervisor, password: sup3r,
      permissions: {
        publish: { allow: ["cordon.>", "$JS.API.>", "_INBOX.>"] },
        subscribe: { allow: ["cordon.*.cmd.>", "$SRV.>", "_INBOX.>"] } } },
    { nkey: ${operatorKey.getPublicKey()},
      permissions: {
        publish: { allow: ["cordon.*.cmd.>", "$SRV.>", "$JS.API.>"] },
        subscribe: { allow: ["_INBOX.>"] } } },
    { user: reader, password: r3ad,
      permissions: {
        publish: { allow: ["$SRV.PING.cordon", "$JS.API.INFO", "$JS.API.STREAM.INFO.CORDON_EVENTS",
                           "$JS.API.CONSUMER.CREATE.CORDON_EVENTS", "$JS.API.CONSUMER.CREATE.CORDON_EVENTS.>",
                           "$JS.API.CONSUMER.INFO.CORDON_EVENTS.>", "$JS.API.CONSUMER.DELETE.CORDON_EVENTS.>",
                           "$JS.API.CONSUMER.MSG.NEXT.CORDON_EVENTS.>"] },
        subscribe: { allow: ["_INBOX.>"] } } }
  ]
}`;

let srv: NatsServer;
let supNc: NatsConnection;
let h: TestHost;
let operator: CordonClient;
let reader: CordonClient;
const bundles: Bundle[] = [];

beforeAll(async () => {
  srv = await NatsServer.start({ config: AUTH });
  supNc = await connectNats({ servers: srv.url, user: 'supervisor', pass: 'sup3r' });
  // Authenticated: commands are served without saying the network is trusted.
  h = await startHost(supNc, 'sec-a', {}, { policy: { bundleRoots: ['/tmp'] } });
  operator = await CordonClient.connect({ servers: srv.url, nkeySeed: seed, timeoutMs: 20_000 });
  reader = await CordonClient.connect({ servers: srv.url, user: 'reader', pass: 'r3ad', timeoutMs: 20_000 });
});

afterAll(async () => {
  await operator?.close();
  await reader?.close();
  await h?.cleanup();
  await supNc?.close();
  await srv?.stop();
  for (const b of bundles) b.cleanup();
});

describe('subject permissions', () => {
  it('the operator (nkey) creates and starts; the read-only user cannot create, kill or destroy: permission-denied at once, nothing happens', async () => {
    const b = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '600']) });
    bundles.push(b);
    const t0 = Date.now();
    const denied = await failure(reader.host('sec-a').create({ id: 'ro-1', bundle: b.dir }));
    expect(denied.code).toBe('PermissionDenied');
    expect(denied.message).toContain('cordon.sec-a.cmd.create');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(h.sup.ids()).toEqual([]);

    const created = await operator.host('sec-a').create({ id: 'op-1', bundle: b.dir });
    await operator.host('sec-a').start({ id: 'op-1' });
    for (const p of [reader.host('sec-a').kill({ id: 'op-1', signal: 'KILL' }), reader.host('sec-a').destroy({ id: 'op-1', force: true }), reader.host('sec-a').pause({ id: 'op-1' })]) {
      expect((await failure(p)).code).toBe('PermissionDenied');
    }
    // A fire-and-forget publish is dropped by the server too.
    reader.nc.publish('cordon.sec-a.cmd.kill', JSON.stringify({ id: 'op-1', signal: 9 }));
    await reader.nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(h.sup.stateOf('op-1')).toBe('running');
    expect((await operator.host('sec-a').state({ id: 'op-1' })).oci).toMatchObject({ status: 'running', pid: created.pid });
    await operator.host('sec-a').destroy({ id: 'op-1', force: true });
    expect(h.sup.ids()).toEqual([]);
  });

  it('the read-only user discovers hosts and reads CORDON_EVENTS', async () => {
    expect((await reader.hosts({ waitMs: 300 })).map((x) => x.host)).toEqual(['sec-a']);
    const jsm = await jetstreamManager(supNc);
    await jsm.streams.add({ name: EVENTS_STREAM, subjects: ['cordon.*.events.>'], storage: 'file' });
    const js = jetstream(supNc);
    const e = { ...newEvent('sec-a', 'op-1', 'create'), seq: 1, containerSeq: 1 };
    await js.publish('cordon.sec-a.events.op-1.create', JSON.stringify(e), { msgID: e.id });
    const got = await firstValueFrom(reader.events$({ host: 'sec-a' }, { sinceSeq: 1 }).pipe(take(1), toArray()));
    expect(got).toEqual([e]);
  });
});

describe('mutual TLS', () => {
  let dir: string;
  let tls: NatsServer;
  let nc: NatsConnection;
  let th: TestHost;
  beforeAll(async () => {
    dir = mkdtempSync('/tmp/cordon-tls-');
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=cordon-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const name of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'san.ext', '-out', `${name}.pem`);
    }
    tls = await NatsServer.start({ jetstream: false, config: `tls { cert_file: "${dir}/server.pem"\n key_file: "${dir}/server.key"\n ca_file: "${dir}/ca.pem"\n verify: true }` });
    const opts = { servers: tls.url, tls: { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') } };
    nc = await connectNats(opts);
    // Every client presents a certificate of the CA (tls_verify): authenticated, no trusted network needed.
    th = await startHost(nc, 'tls-a', {}, { policy: { bundleRoots: ['/tmp'] } });
  });
  afterAll(async () => {
    await th?.cleanup();
    await nc?.close();
    await tls?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a client with a certificate of the CA drives the host; one without a client certificate is refused', async () => {
    const ok = await CordonClient.connect({ servers: tls.url, tls: { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') } });
    try {
      expect(await ok.host('tls-a').list({})).toEqual({ host: 'tls-a', containers: [] });
    } finally {
      await ok.close();
    }
    await expect(connectNats({ servers: tls.url, tls: { caFile: join(dir, 'ca.pem') }, reconnectForever: false })).rejects.toThrow();
  });
});
