// The pod network: bridge cni0 with the gateway address, a bridge/host-local CNI config whose
// routes cover only the pod and Service ranges (no default route: pods cannot reach off the
// machine), and root-namespace guards. Everything added is recorded for cluster-down.sh.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BRIDGE, GATEWAY_IP, POD_CIDR, RUN_DIR, SERVICE_CIDR } from './config.js';
import { run, runOk } from './exec.js';
import { record } from './state.js';

function prefixLength(cidr: string): string {
  return cidr.split('/')[1] ?? '32';
}

export function cniConfig(): object {
  return {
    cniVersion: '0.4.0',
    name: 'isthmus-pods',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: join(RUN_DIR, 'cni', 'ipam'),
          ranges: [[{ subnet: POD_CIDR, gateway: GATEWAY_IP }]],
          routes: [{ dst: POD_CIDR }, { dst: SERVICE_CIDR }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function readSysctl(name: string): string {
  return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
}

/** Inserts an iptables rule and records its deletion. */
async function insertRule(table: string, chain: string, spec: string[]): Promise<void> {
  await runOk('iptables', ['-t', table, '-I', chain, '1', ...spec]);
  appendFileSync(join(RUN_DIR, 'iptables.rules'), `-t ${table} -D ${chain} ${spec.join(' ')}\n`);
}

export interface NetworkOptions {
  cniConfDir: string;
}

export async function setUpNetwork(opts: NetworkOptions): Promise<void> {
  record({
    BRIDGE,
    IP_FORWARD_BEFORE: readSysctl('net.ipv4.ip_forward'),
    ROUTE_LOCALNET_BEFORE: readSysctl('net.ipv4.conf.all.route_localnet'),
  });
  const netns = await run('ip', ['netns', 'list']);
  writeFileSync(
    join(RUN_DIR, 'netns.before'),
    `${netns.stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter(Boolean)
      .join('\n')}\n`,
  );
  for (const d of ['/var/log/pods', '/var/log/containers']) {
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {}
    writeFileSync(join(RUN_DIR, `${d.split('/').pop()}.before`), `${entries.join('\n')}\n`);
  }

  const exists = (await run('ip', ['link', 'show', BRIDGE])).code === 0;
  if (exists)
    throw new Error(`[cluster] bridge ${BRIDGE} already exists (another cluster? run npm run cluster:down)`);
  await runOk('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  record({ BRIDGE_CREATED: 1 });
  await runOk('ip', ['addr', 'add', `${GATEWAY_IP}/${prefixLength(POD_CIDR)}`, 'dev', BRIDGE]);
  await runOk('ip', ['link', 'set', BRIDGE, 'up']);
  // Host traffic to the Service range stays on the bridge: kube-proxy DNATs it to a pod, and if
  // it does not (no rule yet), it dies here instead of following the default route off the machine.
  await runOk('ip', ['route', 'add', SERVICE_CIDR, 'dev', BRIDGE, 'src', GATEWAY_IP]);

  // Pods may talk to pods (and, via DNAT, Services); nothing they send is forwarded elsewhere.
  await insertRule('filter', 'FORWARD', ['-s', POD_CIDR, '!', '-d', POD_CIDR, '-j', 'DROP']);
  await insertRule('filter', 'FORWARD', [
    '-d',
    POD_CIDR,
    '!',
    '-s',
    POD_CIDR,
    '!',
    '-i',
    BRIDGE,
    '-j',
    'DROP',
  ]);
  writeFileSync(join(opts.cniConfDir, '10-isthmus.conflist'), JSON.stringify(cniConfig(), null, 2));
}

/** Lets only loopback and pods connect to a TCP port of the node (apiserver, kubelet). */
export async function guardPort(port: number): Promise<void> {
  await insertRule('filter', 'INPUT', [
    '-p',
    'tcp',
    '--dport',
    String(port),
    '!',
    '-i',
    'lo',
    '!',
    '-s',
    POD_CIDR,
    '-j',
    'DROP',
  ]);
}
