/**
 * kernel/criu/proto.ts on the wire: the tags of the criu_req / criu_opts fields cordon sets are CRIU's
 * (field numbers of images/rpc.proto, written here independently of the schema), and a criu_resp as CRIU
 * sends it decodes. No CRIU needed.
 */
import { describe, expect, it } from 'vitest';
import { decodeResponse, encodeRequest, type CriuOptsMessage } from '../../kernel/criu/proto.js';

/** The top-level fields of a protobuf message: number → raw values (varints as numbers, bytes as Buffers). */
function fields(b: Buffer): Map<number, Array<number | Buffer>> {
  const out = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const byte = b[i++];
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < b.length) {
    const key = varint();
    const n = Math.floor(key / 8);
    const wire = key & 7;
    let val: number | Buffer;
    if (wire === 0) val = varint();
    else if (wire === 2) {
      const len = varint();
      val = b.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(n, [...(out.get(n) ?? []), val]);
  }
  return out;
}

describe('criu_req encoding', () => {
  it('a VERSION request is the two bytes CRIU answers (type = 10)', () => {
    expect(encodeRequest({ type: 'VERSION' }).toString('hex')).toBe('080a');
  });

  it('a NOTIFY answer carries notify_success (field 3)', () => {
    expect(encodeRequest({ type: 'NOTIFY', notify_success: true }).toString('hex')).toBe('08061801');
  });

  it('criu_opts fields have CRIU field numbers', () => {
    const opts: CriuOptsMessage = {
      images_dir_fd: 7,
      pid: 42,
      leave_running: true,
      ext_unix_sk: true,
      tcp_established: true,
      evasive_devices: true,
      shell_job: true,
      file_locks: true,
      log_level: 4,
      log_file: 'dump.log',
      notify_scripts: true,
      root: '/r',
      auto_dedup: true,
      work_dir_fd: 8,
      ext_mnt: [{ key: '/data', val: '/host/data' }],
      manage_cgroups: true,
      cg_root: [{ ctrl: 'memory', path: '/c' }],
      rst_sibling: true,
      inherit_fd: [{ key: 'pipe:[1]', fd: 4 }],
      manage_cgroups_mode: 'SOFT',
      external: ['net[4026531840]:extRootNetNS'],
      empty_ns: 0x40000000,
      freeze_cgroup: '/sys/fs/cgroup/freezer/c',
      orphan_pts_master: true,
      network_lock: 'NFTABLES',
    };
    const req = fields(encodeRequest({ type: 'DUMP', opts }));
    expect(req.get(1)).toEqual([1]); // type DUMP
    const o = fields(req.get(2)![0] as Buffer);
    const expected: Array<[number, number | string]> = [
      [1, 7], [2, 42], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [8, 1], [9, 4], [10, 'dump.log'], [12, 1], [13, '/r'],
      [16, 1], [17, 8], [24, 1], [26, 1], [34, 3], [37, 'net[4026531840]:extRootNetNS'], [38, 0x40000000],
      [44, '/sys/fs/cgroup/freezer/c'], [50, 1], [64, 2],
    ];
    for (const [n, v] of expected) {
      const got = o.get(n)?.[0];
      expect([n, Buffer.isBuffer(got) ? got.toString() : got]).toEqual([n, v]);
    }
    // Nested messages: ext_mount_map (23: key 1, val 2), cgroup_root (25: ctrl 1, path 2), inherit_fd (27: key 1, fd 2).
    const ext = fields(o.get(23)![0] as Buffer);
    expect([ext.get(1)![0].toString(), ext.get(2)![0].toString()]).toEqual(['/data', '/host/data']);
    const cg = fields(o.get(25)![0] as Buffer);
    expect([cg.get(1)![0].toString(), cg.get(2)![0].toString()]).toEqual(['memory', '/c']);
    const inh = fields(o.get(27)![0] as Buffer);
    expect([inh.get(1)![0].toString(), inh.get(2)![0]]).toEqual(['pipe:[1]', 4]);
  });
});

describe('criu_resp decoding', () => {
  it('decodes a notify, a restore answer and a failure', () => {
    // type NOTIFY(6), success, notify { script "post-restore", pid 1234 }
    const script = Buffer.from('post-restore');
    const notify = Buffer.concat([Buffer.from([0x0a, script.length]), script, Buffer.from([0x10, 0xd2, 0x09])]);
    const n = decodeResponse(Buffer.concat([Buffer.from([0x08, 0x06, 0x10, 0x01, 0x2a, notify.length]), notify]));
    expect(n).toEqual({ type: 'NOTIFY', success: true, notify: { script: 'post-restore', pid: 1234 } });

    // type RESTORE(2), success, restore { pid 77 }
    expect(decodeResponse(Buffer.from([0x08, 0x02, 0x10, 0x01, 0x22, 0x02, 0x08, 77]))).toEqual({ type: 'RESTORE', success: true, restore: { pid: 77 } });

    // type DUMP(1), failure, cr_errno 2 (field 7), cr_errmsg "x" (field 9)
    expect(decodeResponse(Buffer.from([0x08, 0x01, 0x10, 0x00, 0x38, 0x02, 0x4a, 0x01, 0x78]))).toEqual({ type: 'DUMP', success: false, cr_errno: 2, cr_errmsg: 'x' });
  });

  it('refuses bytes that are not a criu_resp', () => {
    expect(() => decodeResponse(Buffer.from([0x10, 0x01]))).toThrow(/type/);
  });
});
