/**
 * The cgroup v2 device controller: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, emitted by hand
 * instruction by instruction exactly as runc's devicefilter package does, from the clean rule list of the
 * devices emulator. The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
 * in R1 (access_type = type | access << 16) and returns 1 to allow, 0 to deny.
 */
import { DeviceEmulator, deviceRuleString } from '../device-rules.js';
import type { DeviceRule } from '../../../config/model.js';

/** License string of the program (kernel MODULE_LICENSE format), as runc. */
export const DEVICE_FILTER_LICENSE = 'Apache';

/** bpf_cgroup_dev_ctx type values. */
export const BPF_DEVCG_DEV = { BLOCK: 1, CHAR: 2 } as const;
/** bpf_cgroup_dev_ctx access bits. */
export const BPF_DEVCG_ACC = { MKNOD: 1, READ: 2, WRITE: 4 } as const;

// Opcodes (class | op | source).
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU_RSH_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOV_K = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU_MOV_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT = 0x95; // BPF_JMP | BPF_EXIT

/** One eBPF instruction (struct bpf_insn); `target` is a block label resolved into `off` at the end. */
export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** For jumps: index of the block to jump to. */
  target?: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number, target?: number): BpfInsn => ({ code, dst, src, off, imm, target });

/** A device filter program: instructions and their bytes. */
export interface DeviceFilterProgram {
  insns: BpfInsn[];
  /** 8 bytes per instruction, little endian, ready for BPF_PROG_LOAD. */
  bytes: Buffer;
  /** True when the program allows by default (a deny-list). */
  defaultAllow: boolean;
}

/** Build the filter for `rules` (applied in order from deny-all, as the kernel's v1 cgroup would). */
export function buildDeviceFilter(rules: readonly DeviceRule[]): DeviceFilterProgram {
  const emu = DeviceEmulator.fromRules(rules);
  const clean = emu.toRules();
  const defaultAllow = emu.isBlacklist();
  const insns: BpfInsn[] = [
    // R2 <- type (lower 16 bits of access_type), R3 <- access (upper 16 bits), R4 <- major, R5 <- minor
    insn(LDX_MEM_W, 2, 1, 0, 0),
    insn(ALU_AND_K, 2, 0, 0, 0xffff),
    insn(LDX_MEM_W, 3, 1, 0, 0),
    insn(ALU_RSH_K, 3, 0, 0, 16),
    insn(LDX_MEM_W, 4, 1, 4, 0),
    insn(LDX_MEM_W, 5, 1, 8, 0),
  ];
  const blockStart: number[] = [];
  let block = 0;
  clean.forEach((rule, idx) => {
    if (rule.type === 'a') {
      if (idx !== 0) throw new Error(`internal error: wildcard device rule at index ${idx}`);
      return;
    }
    if (rule.allow === defaultAllow) throw new Error(`internal error: no-op device rule ${deviceRuleString(rule)}`);
    const next = block + 1;
    blockStart[block] = insns.length;
    const type = rule.type === 'c' ? BPF_DEVCG_DEV.CHAR : BPF_DEVCG_DEV.BLOCK;
    insns.push(insn(JMP_JNE_K, 2, 0, 0, type, next));
    let access = 0;
    for (const c of rule.access) access |= c === 'r' ? BPF_DEVCG_ACC.READ : c === 'w' ? BPF_DEVCG_ACC.WRITE : BPF_DEVCG_ACC.MKNOD;
    if (access !== (BPF_DEVCG_ACC.READ | BPF_DEVCG_ACC.WRITE | BPF_DEVCG_ACC.MKNOD)) {
      // if ((R3 & access) != R3) goto next  (R1 as scratch)
      insns.push(insn(ALU_MOV_X, 1, 3, 0, 0), insn(ALU_AND_K, 1, 0, 0, access), insn(JMP_JNE_X, 1, 3, 0, 0, next));
    }
    if (rule.major >= 0) insns.push(insn(JMP_JNE_K, 4, 0, 0, rule.major, next));
    if (rule.minor >= 0) insns.push(insn(JMP_JNE_K, 5, 0, 0, rule.minor, next));
    insns.push(insn(ALU_MOV_K, 0, 0, 0, rule.allow ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0));
    block++;
  });
  blockStart[block] = insns.length;
  insns.push(insn(ALU_MOV_K, 0, 0, 0, defaultAllow ? 1 : 0), insn(JMP_EXIT, 0, 0, 0, 0));
  insns.forEach((x, i) => {
    if (x.target !== undefined) x.off = blockStart[x.target] - (i + 1);
  });
  return { insns, bytes: encodeInsns(insns), defaultAllow };
}

/** struct bpf_insn bytes: u8 code; u8 dst:4, src:4; s16 off; s32 imm (little endian). */
export function encodeInsns(insns: readonly BpfInsn[]): Buffer {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    b.writeUInt8(x.code, i * 8);
    b.writeUInt8(((x.src & 0xf) << 4) | (x.dst & 0xf), i * 8 + 1);
    b.writeInt16LE(x.off, i * 8 + 2);
    b.writeInt32LE(x.imm | 0, i * 8 + 4);
  });
  return b;
}

/** Run the program on one access in JavaScript (a reference interpreter for tests and diagnostics). */
export function evaluateDeviceFilter(p: DeviceFilterProgram, type: 'c' | 'b', major: number, minor: number, access: string): boolean {
  const r = new Array<number>(11).fill(0);
  let acc = 0;
  for (const c of access) acc |= c === 'r' ? BPF_DEVCG_ACC.READ : c === 'w' ? BPF_DEVCG_ACC.WRITE : BPF_DEVCG_ACC.MKNOD;
  const ctx = [((type === 'c' ? BPF_DEVCG_DEV.CHAR : BPF_DEVCG_DEV.BLOCK) | (acc << 16)) >>> 0, major >>> 0, minor >>> 0];
  for (let pc = 0; pc < p.insns.length; pc++) {
    const x = p.insns[pc];
    switch (x.code) {
      case LDX_MEM_W:
        r[x.dst] = ctx[x.off / 4];
        break;
      case ALU_AND_K:
        r[x.dst] = (r[x.dst] & x.imm) >>> 0;
        break;
      case ALU_RSH_K:
        r[x.dst] = r[x.dst] >>> x.imm;
        break;
      case ALU_MOV_K:
        r[x.dst] = x.imm >>> 0;
        break;
      case ALU_MOV_X:
        r[x.dst] = r[x.src];
        break;
      case JMP_JNE_K:
        if (r[x.dst] !== x.imm >>> 0) pc += x.off;
        break;
      case JMP_JNE_X:
        if (r[x.dst] !== r[x.src]) pc += x.off;
        break;
      case JMP_EXIT:
        return r[0] === 1;
      default:
        throw new Error(`unknown opcode 0x${x.code.toString(16)}`);
    }
  }
  throw new Error('program fell off its end');
}
