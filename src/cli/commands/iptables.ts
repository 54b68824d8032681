/**
 * `isthmus iptables`: the init-container step that installs transparent traffic capture,
 * flag-compatible with istio-iptables so injected pod specs and annotations carry over, e.g.
 *   isthmus iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020
 */
import { networkInterfaces } from 'node:os';
import type { Command } from 'commander';
import { applyCapture, removeCapture } from '../../iptables/apply.js';
import { type CaptureFlags, parseCaptureFlags } from '../../iptables/options.js';
import { renderRestoreInput } from '../../iptables/rules.js';

interface IptablesCliOptions extends Omit<CaptureFlags, 'ipv6'> {
  dryRun?: boolean;
  ipv6?: boolean;
  cleanup?: boolean;
}

/** True when this network namespace has a routable IPv6 address (not loopback or link-local). */
function hasIPv6Address(): boolean {
  return Object.values(networkInterfaces()).some((addrs) =>
    (addrs ?? []).some((a) => a.family === 'IPv6' && !a.internal && !/^fe[89ab]/i.test(a.address)),
  );
}

export function register(program: Command): void {
  program
    .command('iptables')
    .description('Install istio-iptables compatible traffic capture (nat table) in this network namespace')
    .option('-p, --envoy-port <port>', 'port outbound TCP is redirected to', '15001')
    .option('-z, --inbound-capture-port <port>', 'port inbound TCP is redirected to', '15006')
    .option('-u, --proxy-uid <uids>', 'UID(s) of the proxy, never captured', '1337')
    .option('-g, --proxy-gid <gids>', 'GID(s) of the proxy, never captured (default: same as -u)')
    .option(
      '-m, --istio-inbound-interception-mode <mode>',
      'REDIRECT (TPROXY is not supported yet)',
      'REDIRECT',
    )
    .option(
      '-i, --istio-service-cidr <cidrs>',
      "outbound ranges to capture: '*' or CIDR list ('' = none)",
      '',
    )
    .option('-x, --istio-service-exclude-cidr <cidrs>', 'outbound ranges never captured (CIDR list)', '')
    .option('-b, --istio-inbound-ports <ports>', "inbound ports to capture: '*' or port list ('' = none)", '')
    .option('-d, --istio-local-exclude-ports <ports>', "inbound ports never captured (with -b '*')", '')
    .option(
      '-o, --istio-local-outbound-ports-exclude <ports>',
      'outbound destination ports never captured',
      '',
    )
    .option('--ipv6', 'also install ip6tables rules (default: when the pod has an IPv6 address)')
    .option('--no-ipv6', 'never install ip6tables rules')
    .option('-n, --dry-run', 'print the iptables-restore input instead of applying it')
    .option('--cleanup', 'remove the capture chains and hooks instead of installing them')
    .action(async (raw: Record<string, string | boolean | undefined>) => {
      const cli = normalise(raw);
      const ipv6 = cli.ipv6 ?? (process.env.ENABLE_INBOUND_IPV6 === 'true' || hasIPv6Address());
      if (cli.cleanup) {
        await removeCapture(ipv6 ? [4, 6] : [4]);
        process.stdout.write('isthmus iptables: capture rules removed\n');
        return;
      }
      const opts = parseCaptureFlags({ ...cli, ipv6 });
      if (cli.dryRun) {
        process.stdout.write(renderRestoreInput(opts, 4));
        if (opts.ipv6) process.stdout.write(renderRestoreInput(opts, 6));
        return;
      }
      for (const done of await applyCapture(opts)) {
        process.stdout.write(
          `isthmus iptables: IPv${done.family}: ${done.rules} nat rules applied (${done.restore})\n`,
        );
      }
    });
}

/** Commander keys by long name; map them back to istio-iptables' short letters. */
function normalise(raw: Record<string, string | boolean | undefined>): IptablesCliOptions {
  const str = (key: string): string | undefined =>
    typeof raw[key] === 'string' ? (raw[key] as string) : undefined;
  return {
    p: str('envoyPort'),
    z: str('inboundCapturePort'),
    u: str('proxyUid'),
    g: str('proxyGid'),
    m: str('istioInboundInterceptionMode'),
    i: str('istioServiceCidr'),
    x: str('istioServiceExcludeCidr'),
    b: str('istioInboundPorts'),
    d: str('istioLocalExcludePorts'),
    o: str('istioLocalOutboundPortsExclude'),
    ipv6: typeof raw.ipv6 === 'boolean' ? raw.ipv6 : undefined,
    dryRun: raw.dryRun === true,
    cleanup: raw.cleanup === true,
  };
}
