/**
 * CRIU's RPC messages (criu_req, criu_resp, criu_opts, criu_notify, ...): our own definitions of the messages
 * cordon uses, written from CRIU's documented schema (images/rpc.proto of CRIU 4.x), with CRIU's field numbers
 * and types, so the wire bytes are CRIU's. Fields cordon never sets are left out (protobuf skips unknown
 * fields it receives).
 *
 * Library: protobufjs. It is the maintained, dependency-light (one dependency, `long`) protobuf runtime for
 * Node that builds message types at run time from a schema text — no code generator, no generated files in
 * the repository, and proto2 semantics (required fields, [default]) as CRIU uses them. @bufbuild/protobuf
 * would need generated descriptors (a build step with protoc or buf). It is loaded on first use, so importing
 * kernel/ does not load it.
 */
import { createRequire } from 'node:module';

// The schema (proto2). Field numbers exactly as CRIU's rpc.proto.
const SCHEMA = `
syntax = "proto2";

message ext_mount_map { required string key = 1; required string val = 2; }
message join_namespace { required string ns = 1; required string ns_file = 2; optional string extra_opt = 3; }
message inherit_fd { required string key = 1; required int32 fd = 2; }
message cgroup_root { optional string ctrl = 1; required string path = 2; }

enum criu_cg_mode { IGNORE = 0; CG_NONE = 1; PROPS = 2; SOFT = 3; FULL = 4; STRICT = 5; DEFAULT = 6; }
enum criu_network_lock_method { IPTABLES = 1; NFTABLES = 2; SKIP = 3; }

message criu_opts {
  required int32 images_dir_fd = 1 [default = -1];
  optional int32 pid = 2;
  optional bool leave_running = 3;
  optional bool ext_unix_sk = 4;
  optional bool tcp_established = 5;
  optional bool evasive_devices = 6;
  optional bool shell_job = 7;
  optional bool file_locks = 8;
  optional int32 log_level = 9 [default = 2];
  optional string log_file = 10;
  optional bool notify_scripts = 12;
  optional string root = 13;
  optional bool auto_dedup = 16;
  optional int32 work_dir_fd = 17;
  optional bool link_remap = 18;
  repeated ext_mount_map ext_mnt = 23;
  optional bool manage_cgroups = 24;
  repeated cgroup_root cg_root = 25;
  optional bool rst_sibling = 26;
  repeated inherit_fd inherit_fd = 27;
  optional bool auto_ext_mnt = 28;
  optional bool ext_sharing = 29;
  optional bool ext_masters = 30;
  repeated string skip_mnt = 31;
  repeated string enable_fs = 32;
  optional criu_cg_mode manage_cgroups_mode = 34;
  repeated string external = 37;
  optional uint32 empty_ns = 38;
  repeated join_namespace join_ns = 39;
  optional string freeze_cgroup = 44;
  optional uint32 timeout = 45;
  optional bool orphan_pts_master = 50;
  optional string config_file = 51;
  optional string lsm_profile = 53;
  optional criu_network_lock_method network_lock = 64 [default = IPTABLES];
  optional string images_dir = 68;
}

message criu_dump_resp { optional bool restored = 1; }
message criu_restore_resp { required int32 pid = 1; }
message criu_notify { optional string script = 1; optional int32 pid = 2; }

enum criu_req_type {
  EMPTY = 0; DUMP = 1; RESTORE = 2; CHECK = 3; PRE_DUMP = 4; PAGE_SERVER = 5; NOTIFY = 6;
  CPUINFO_DUMP = 7; CPUINFO_CHECK = 8; FEATURE_CHECK = 9; VERSION = 10; WAIT_PID = 11;
  PAGE_SERVER_CHLD = 12; SINGLE_PRE_DUMP = 13;
}

message criu_req {
  required criu_req_type type = 1;
  optional criu_opts opts = 2;
  optional bool notify_success = 3;
  optional bool keep_open = 4;
  optional uint32 pid = 6;
}

message criu_version {
  required int32 major_number = 1;
  required int32 minor_number = 2;
  optional string gitid = 3;
  optional int32 sublevel = 4;
  optional int32 extra = 5;
  optional string name = 6;
}

message criu_resp {
  required criu_req_type type = 1;
  required bool success = 2;
  optional criu_dump_resp dump = 3;
  optional criu_restore_resp restore = 4;
  optional criu_notify notify = 5;
  optional int32 cr_errno = 7;
  optional string cr_errmsg = 9;
  optional criu_version version = 10;
  optional int32 status = 11;
}
`;

/** A request type (criu_req_type) by name. */
export type CriuReqType = 'DUMP' | 'RESTORE' | 'CHECK' | 'NOTIFY' | 'VERSION';

/** criu_opts, as cordon sets it (snake_case: the schema's names). */
export interface CriuOptsMessage {
  images_dir_fd: number;
  pid?: number;
  leave_running?: boolean;
  ext_unix_sk?: boolean;
  tcp_established?: boolean;
  evasive_devices?: boolean;
  shell_job?: boolean;
  file_locks?: boolean;
  log_level?: number;
  log_file?: string;
  notify_scripts?: boolean;
  root?: string;
  auto_dedup?: boolean;
  work_dir_fd?: number;
  link_remap?: boolean;
  ext_mnt?: Array<{ key: string; val: string }>;
  manage_cgroups?: boolean;
  cg_root?: Array<{ ctrl?: string; path: string }>;
  rst_sibling?: boolean;
  inherit_fd?: Array<{ key: string; fd: number }>;
  manage_cgroups_mode?: 'IGNORE' | 'SOFT' | 'FULL' | 'STRICT';
  external?: string[];
  empty_ns?: number;
  join_ns?: Array<{ ns: string; ns_file: string; extra_opt?: string }>;
  freeze_cgroup?: string;
  orphan_pts_master?: boolean;
  network_lock?: 'IPTABLES' | 'NFTABLES' | 'SKIP';
}

/** criu_req. */
export interface CriuReqMessage {
  type: CriuReqType;
  opts?: CriuOptsMessage;
  notify_success?: boolean;
}

/** criu_resp, decoded (absent optional fields are undefined). */
export interface CriuRespMessage {
  type: string;
  success: boolean;
  dump?: { restored?: boolean };
  restore?: { pid: number };
  notify?: { script?: string; pid?: number };
  cr_errno?: number;
  cr_errmsg?: string;
  version?: { major_number: number; minor_number: number; gitid?: string; sublevel?: number; extra?: number; name?: string };
  status?: number;
}

interface MessageType {
  fromObject(o: object): unknown;
  encode(m: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
  toObject(m: unknown, o: object): Record<string, unknown>;
}

let types: { req: MessageType; resp: MessageType } | undefined;

function load(): { req: MessageType; resp: MessageType } {
  if (!types) {
    // protobufjs is CommonJS; require it lazily (this module is ESM).
    const protobuf = createRequire(import.meta.url)('protobufjs') as {
      parse(src: string, o: { keepCase: boolean }): { root: { lookupType(n: string): MessageType } };
    };
    const { root } = protobuf.parse(SCHEMA, { keepCase: true });
    types = { req: root.lookupType('criu_req'), resp: root.lookupType('criu_resp') };
  }
  return types;
}

/** Encode a criu_req. */
export function encodeRequest(req: CriuReqMessage): Buffer {
  const { req: T } = load();
  return Buffer.from(T.encode(T.fromObject(req)).finish());
}

/** Decode a criu_resp (throws on bytes that are not one: a missing required field, a bad wire type). */
export function decodeResponse(bytes: Uint8Array): CriuRespMessage {
  const { resp: T } = load();
  return T.toObject(T.decode(bytes), { enums: String, longs: Number, defaults: false }) as unknown as CriuRespMessage;
}
