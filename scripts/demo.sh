#!/usr/bin/env bash
# `npm run demo`: set the machine up (scripts/setup.sh), then run one real, isolated container from the busybox
# rootfs on the embedded default (no NATS): new pid, mount, uts, ipc, network and cgroup namespaces,
# pivot_root, runc's default mounts, masked paths and capabilities.
set -euo pipefail
cd "$(dirname "$0")/.."
CORDON_SETUP_CRIU=0 bash scripts/setup.sh
bundle=.cache/demo-bundle
rm -rf "$bundle" && mkdir -p "$bundle"
node bin/cordon.js spec -b "$bundle"
node -e '
  const fs = require("fs"), path = require("path");
  const file = process.argv[1], spec = JSON.parse(fs.readFileSync(file, "utf8"));
  spec.root.path = path.resolve(".cache/rootfs/busybox");
  spec.process.args = ["sh", "-c", "echo hello from $(hostname); id; ls /"];
  fs.writeFileSync(file, JSON.stringify(spec, null, "\t"));
' "$bundle/config.json"
exec node bin/cordon.js run -b "$bundle" "demo-$$"
