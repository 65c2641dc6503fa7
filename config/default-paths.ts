/**
 * runc's default masked and read-only paths (what `runc spec` writes into a new config.json). config/
 * applies them to a config that leaves the fields out (and mounts /proc or /sys); `[]` turns them off.
 */

/** Paths `runc spec` masks (bind /dev/null over files, an empty read-only tmpfs over directories). */
export const RUNC_DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
]);

/** Paths `runc spec` makes read-only. */
export const RUNC_DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
]);
