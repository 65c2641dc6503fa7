/**
 * NATS connection options against a real nats-server: user/password and token authentication succeed with
 * the right secret and fail with a wrong one; options that cannot work are refused naming the option.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsOptionsError, connectNats, natsOptionsFromEnv } from '../../events/nats-connection.js';
import { NatsServer } from '../fixtures/nats-server.js';

describe('NATS connection options', () => {
  let users: NatsServer;
  let token: NatsServer;
  beforeAll(async () => {
    users = await NatsServer.start({ jetstream: false, config: 'authorization { users: [ { user: alice, password: s3cret } ] }' });
    token = await NatsServer.start({ jetstream: false, config: 'authorization { token: t0ken }' });
  });
  afterAll(async () => {
    await users?.stop();
    await token?.stop();
  });

  it('user/password: the right password connects and round-trips a request', async () => {
    const nc = await connectNats({ servers: users.url, user: 'alice', pass: 's3cret' });
    const sub = nc.subscribe('echo');
    (async () => {
      for await (const m of sub) m.respond(m.data);
    })();
    const r = await nc.request('echo', 'hi', { timeout: 2000 });
    expect(r.string()).toBe('hi');
    await nc.close();
  });

  it('user/password: a wrong password is refused by the server', async () => {
    await expect(connectNats({ servers: users.url, user: 'alice', pass: 'nope', reconnectForever: false })).rejects.toThrow(/Authorization/i);
  });

  it('token: right token connects, wrong token is refused', async () => {
    const nc = await connectNats({ servers: token.url, token: 't0ken' });
    await nc.flush();
    await nc.close();
    await expect(connectNats({ servers: token.url, token: 'bad', reconnectForever: false })).rejects.toThrow(/Authorization/i);
  });

  it('refuses unusable options naming the field', async () => {
    await expect(connectNats({ servers: users.url, pass: 'x' })).rejects.toMatchObject({ name: 'NatsOptionsError', field: 'user' });
    await expect(connectNats({ servers: users.url, credsFile: '/nonexistent.creds' })).rejects.toBeInstanceOf(NatsOptionsError);
    await expect(connectNats({ servers: users.url, nkeySeed: 'not-a-seed' })).rejects.toMatchObject({ field: 'nkeySeed' });
    await expect(connectNats({ servers: users.url, tls: { certFile: '/etc/hostname' } })).rejects.toMatchObject({ field: 'tls.keyFile' });
  });

  it('reads CORDON_NATS_* from the environment', () => {
    expect(natsOptionsFromEnv({})).toBeUndefined();
    expect(natsOptionsFromEnv({ CORDON_NATS_URL: 'nats://a:1, nats://b:2', CORDON_NATS_USER: 'u', CORDON_NATS_PASS: 'p', CORDON_NATS_TLS_CA: '/ca.pem' })).toEqual({
      servers: ['nats://a:1', 'nats://b:2'],
      user: 'u',
      pass: 'p',
      tls: { caFile: '/ca.pem' },
    });
  });
});
