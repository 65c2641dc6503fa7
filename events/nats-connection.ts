/**
 * How cordon connects to NATS: one options shape (servers, user/password, token, nkey seed, creds file, TLS)
 * shared by the supervisor, the command service, the CLI and the client library, read from flags or from
 * CORDON_NATS_* environment variables, turned into a connection of the v3 Node client.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import { type Authenticator, type NatsConnection, connect, credsAuthenticator, nkeyAuthenticator } from '@nats-io/transport-node';

/** Where NATS is and how to authenticate to it. */
export interface NatsOptions {
  /** Server URL(s), e.g. nats://127.0.0.1:4222 (several for a cluster). */
  servers: string | string[];
  /** Username and password authentication. */
  user?: string;
  pass?: string;
  /** Token authentication. */
  token?: string;
  /** An nkey seed (SU...) or a file holding one. */
  nkeySeed?: string;
  nkeySeedFile?: string;
  /** A decentralised-auth creds file (JWT + nkey seed). */
  credsFile?: string;
  /** TLS: CA bundle to verify the server, and a client certificate and key for mutual TLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Connection name shown by the server (monitoring, `nats server report connections`). */
  name?: string;
  /** Keep reconnecting forever (default true: a supervisor outlives server restarts). */
  reconnectForever?: boolean;
  /** Give up the first connect after this many ms (default 2000). */
  timeoutMs?: number;
}

/** A NATS option that cannot be used (a missing file, a user without a password). */
export class NatsOptionsError extends LifecycleError {
  declare readonly field: string;
  constructor(field: string, reason: string) {
    super('BadRequest', `NATS option ${field}: ${reason}`, { field });
    this.name = 'NatsOptionsError';
  }
}

function readOption(field: string, file: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new NatsOptionsError(field, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function authenticators(o: NatsOptions): Authenticator[] {
  const out: Authenticator[] = [];
  if (o.credsFile) out.push(credsAuthenticator(readOption('credsFile', o.credsFile)));
  const seed = o.nkeySeedFile ? new TextDecoder().decode(readOption('nkeySeedFile', o.nkeySeedFile)).trim() : o.nkeySeed;
  if (seed) {
    if (!/^S[A-Z2-7]{57}$/.test(seed)) throw new NatsOptionsError(o.nkeySeedFile ? 'nkeySeedFile' : 'nkeySeed', 'not an nkey seed (S... base32, 58 characters)');
    out.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  return out;
}

/** Check the options and open a connection. */
export async function connectNats(o: NatsOptions): Promise<NatsConnection> {
  if (o.pass !== undefined && o.user === undefined) throw new NatsOptionsError('user', 'a password needs a user');
  if (o.user !== undefined && o.token !== undefined) throw new NatsOptionsError('token', 'use either a token or a user');
  for (const [k, f] of Object.entries(o.tls ?? {})) {
    if (f !== undefined && !fs.existsSync(f)) throw new NatsOptionsError(`tls.${k}`, `no such file ${f}`);
  }
  if (Boolean(o.tls?.certFile) !== Boolean(o.tls?.keyFile)) throw new NatsOptionsError('tls.keyFile', 'a client certificate needs its key and the key its certificate');
  const auth = authenticators(o);
  return connect({
    servers: o.servers,
    ...(o.user !== undefined ? { user: o.user, pass: o.pass ?? '' } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(auth.length ? { authenticator: auth.length === 1 ? auth[0] : auth } : {}),
    ...(o.tls ? { tls: { ...o.tls } } : {}),
    name: o.name ?? 'cordon',
    maxReconnectAttempts: o.reconnectForever === false ? 10 : -1,
    reconnectTimeWait: 250,
    timeout: o.timeoutMs ?? 2000,
    waitOnFirstConnect: false,
  });
}

/** NATS options from CORDON_NATS_URL, CORDON_NATS_USER/PASS/TOKEN/NKEY/CREDS, CORDON_NATS_TLS_CA/CERT/KEY; undefined without a URL. */
export function natsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsOptions | undefined {
  const url = env.CORDON_NATS_URL;
  if (!url) return undefined;
  const tls = { caFile: env.CORDON_NATS_TLS_CA, certFile: env.CORDON_NATS_TLS_CERT, keyFile: env.CORDON_NATS_TLS_KEY };
  const hasTls = Object.values(tls).some((v) => v);
  return {
    servers: url.split(',').map((s) => s.trim()).filter(Boolean),
    ...(env.CORDON_NATS_USER ? { user: env.CORDON_NATS_USER, pass: env.CORDON_NATS_PASS ?? '' } : {}),
    ...(env.CORDON_NATS_TOKEN ? { token: env.CORDON_NATS_TOKEN } : {}),
    ...(env.CORDON_NATS_NKEY ? { nkeySeedFile: env.CORDON_NATS_NKEY } : {}),
    ...(env.CORDON_NATS_CREDS ? { credsFile: env.CORDON_NATS_CREDS } : {}),
    ...(hasTls ? { tls: Object.fromEntries(Object.entries(tls).filter(([, v]) => v)) } : {}),
  };
}
