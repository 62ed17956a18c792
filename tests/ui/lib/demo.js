// The real storage stack for browser tests: scripts/demo itself (as root: three sparse images as
// loop devices, nos-agent in a private mount namespace with a tmpfs over /srv and an allowlist
// that accepts only loop devices, nosd with the three planners), started with
// NOS_DEMO_BIN_DIR (the binaries already built) in a temporary directory and stopped with SIGTERM, which makes the demo
// stop both daemons, forget the btrfs members and detach its loop devices.

import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

import { REPO } from './harness.js';

const TOOLS = ['losetup', 'unshare', 'nsenter', 'mkfs.btrfs', 'btrfs', 'blkid', 'truncate'];

function onPath(tool) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the real-agent suite cannot run here, or null when it can. */
export function demoUnavailable() {
  if (process.getuid?.() !== 0) return 'not root: real btrfs on loop devices needs root';
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control: loop devices unavailable';
  const missing = TOOLS.filter((tool) => !onPath(tool));
  if (missing.length) return `missing ${missing.join(', ')} (install btrfs-progs, util-linux)`;
  const target = binDir();
  for (const binary of ['nosd', 'nos-agent']) {
    if (!existsSync(path.join(target, binary))) return `no ${binary} in ${target}: cargo build --bin nosd --bin nos-agent`;
  }
  return null;
}

function binDir() {
  return path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug');
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The pid of the nos-agent serving `socket` (inside its mount namespace), from /proc. */
function agentPid(socket) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv;
    try { argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (path.basename(argv[0] ?? '') === 'nos-agent' && argv.includes(socket)) return Number(entry);
  }
  return null;
}

/** Starts scripts/demo; resolves once nosd printed its setup token. */
export async function startDemo() {
  // In /run, like the Rust tests' scratch directories: the agent refuses an fstab or key
  // directory under a group- or world-writable directory such as /tmp.
  const dir = mkdtempSync('/run/nos-ui-demo-');
  chmodSync(dir, 0o755);
  const port = await freePort();
  const child = spawn(path.join(REPO, 'scripts', 'demo'), [], {
    cwd: REPO,
    env: { ...process.env, DEMO_DIR: dir, NOS_DEMO_PORT: String(port), NOS_DEMO_BIN_DIR: binDir(), RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start within 60 s:\n${log}`)), 60_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const plain = log.replace(/\x1b\[[0-9;]*m/g, '');
      const token = /one-time setup token: (\S+)/.exec(plain);
      const disks = /demo disks: (.+)/.exec(plain);
      if (token && disks) { clearTimeout(timer); resolve({ token: token[1], loops: disks[1].trim().split(/\s+/) }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the demo exited with ${code}:\n${log}`)); });
  });
  const socket = path.join(dir, 'agent.sock');
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    loops: ready.loops,
    log: () => log,
    setupToken: () => ready.token,
    agentPid: () => agentPid(socket),
    /** The plugin directories nosd loads, from the demo's nosd.toml. */
    pluginDirs: () => JSON.parse(/^plugins = (\[.*\])$/m.exec(readFileSync(path.join(dir, 'nosd.toml'), 'utf8'))[1]),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 30_000));
        if ((await Promise.race([exited, timeout])) === 'timeout') {
          child.kill('SIGKILL');
          await exited;
        }
      }
      // Belt and braces: detach any of this demo's images still attached (only ours: by file).
      for (const image of ['disk1.img', 'disk2.img', 'disk3.img'].map((name) => path.join(dir, 'disks', name))) {
        if (!existsSync(image)) continue;
        const attached = execFileSync('losetup', ['-j', image], { encoding: 'utf8' });
        for (const line of attached.split('\n').filter(Boolean)) {
          try { execFileSync('losetup', ['-d', line.split(':')[0]]); } catch { /* already going */ }
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
