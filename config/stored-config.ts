/**
 * The config a container was created with, as it is stored in its state (state.json and the `create`
 * event): the validated setup and the hooks. start, exec, kill, delete and the poststop hooks use this and
 * never read config.json again, as runc keeps the create-time config in its state. Integers beyond JSON's
 * safe range (rlimits, cgroup limits, seccomp arguments) are bigints in the setup and tagged objects here.
 */
import type { ContainerSetup } from './index.js';
import type { OciHooks } from './oci-spec.js';

/** What a container keeps of its config from create. */
export interface StoredConfig {
  /** The validated setup the container was built from (its process, namespaces, rootfs, seccomp, ...). */
  setup: ContainerSetup;
  /** Its OCI hooks as given ({} when none). */
  hooks: OciHooks;
}

const TAG = '$bigint';

/** A StoredConfig as plain JSON data (bigints as `{ "$bigint": "123" }`). */
export function encodeStoredConfig(c: StoredConfig): unknown {
  return JSON.parse(JSON.stringify(c, (_k, v: unknown) => (typeof v === 'bigint' ? { [TAG]: v.toString() } : v))) as unknown;
}

/** The StoredConfig of encodeStoredConfig's data; throws naming what is missing. */
export function decodeStoredConfig(x: unknown): StoredConfig {
  const revive = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(revive);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === TAG && typeof o[TAG] === 'string') return BigInt(o[TAG] as string);
    return Object.fromEntries(keys.map((k) => [k, revive(o[k])]));
  };
  const c = revive(x) as Partial<StoredConfig> | undefined;
  if (!c || typeof c !== 'object' || !c.setup || typeof c.setup !== 'object' || !c.setup.process) throw new Error('stored config: no setup');
  return { setup: c.setup as ContainerSetup, hooks: (c.hooks ?? {}) as OciHooks };
}
