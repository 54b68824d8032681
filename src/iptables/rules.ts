/**
 * Generates the nat-table rules istio-iptables installs for REDIRECT mode, as one
 * `iptables-restore` input per address family. Pure: options in, text out.
 *
 * Rule order follows the project's Istio reference sheet (shared/reference/istio-facts.md).
 * Two deliberate differences from Istio's newest releases, both from that sheet: no HBONE port
 * (15008) exceptions, and `-o` port exclusions sit after the loopback/owner rules.
 */
import { cidrContains } from './cidr.js';
import type { CaptureOptions } from './options.js';

export type Family = 4 | 6;

/** The chains this tool owns in the nat table; everything else there belongs to someone else. */
export const OWNED_CHAINS = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'] as const;

/** Source address of the proxy's inbound passthrough connections to the app (Istio's choice). */
const PASSTHROUGH_SOURCE: Record<Family, string> = { 4: '127.0.0.6/32', 6: '::6/128' };
const LOCALHOST: Record<Family, string> = { 4: '127.0.0.1/32', 6: '::1/128' };
const LOOPBACK_ADDRESS: Record<Family, string> = { 4: '127.0.0.1', 6: '::1' };

/** The `-A ...` rule lines for one family, in order. */
export function captureRules(opts: CaptureOptions, family: Family): string[] {
  const rules: string[] = [
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${opts.outboundPort}`,
    `-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${opts.inboundPort}`,
    ...inboundRules(opts),
    ...outboundRules(opts, family),
  ];
  return rules;
}

function inboundRules(opts: CaptureOptions): string[] {
  // An empty -b disables inbound capture entirely, so not even the PREROUTING hook is added.
  if (opts.inboundPorts !== '*' && opts.inboundPorts.length === 0) return [];
  const rules = ['-A PREROUTING -p tcp -j ISTIO_INBOUND'];
  if (opts.inboundPorts === '*') {
    // Exclusions only make sense against "everything"; with an explicit -b list they are moot.
    for (const port of opts.inboundExcludePorts)
      rules.push(`-A ISTIO_INBOUND -p tcp --dport ${port} -j RETURN`);
    rules.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
  } else {
    for (const port of opts.inboundPorts) {
      rules.push(`-A ISTIO_INBOUND -p tcp --dport ${port} -j ISTIO_IN_REDIRECT`);
    }
  }
  return rules;
}

function outboundRules(opts: CaptureOptions, family: Family): string[] {
  const localhost = LOCALHOST[family];
  const rules = [
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    // The proxy's passthrough to the app (source 127.0.0.6) must reach the app, not loop back in.
    `-A ISTIO_OUTPUT -o lo -s ${PASSTHROUGH_SOURCE[family]} -j RETURN`,
  ];
  const includesLoopback =
    opts.outboundIncludeRanges !== '*' &&
    opts.outboundIncludeRanges.some((cidr) => cidrContains(cidr, LOOPBACK_ADDRESS[cidr.family]));
  const owners: Array<['uid' | 'gid', number]> = [
    ...opts.proxyUids.map((id): ['uid', number] => ['uid', id]),
    ...opts.proxyGids.map((id): ['gid', number] => ['gid', id]),
  ];
  for (const [kind, id] of owners) {
    // The proxy calling its own pod IP (e.g. through a Service VIP that resolved to this pod)
    // leaves via lo: send it to the inbound listener so inbound policy applies to it.
    rules.push(`-A ISTIO_OUTPUT -o lo ! -d ${localhost} -m owner --${kind}-owner ${id} -j ISTIO_IN_REDIRECT`);
    // The app calling itself via its pod IP stays local, uncaptured; unless the user asked to
    // capture a loopback range with -i, as istio-iptables does.
    if (!includesLoopback) rules.push(`-A ISTIO_OUTPUT -o lo -m owner ! --${kind}-owner ${id} -j RETURN`);
    // Everything else the proxy sends goes out as is; capturing it would loop forever.
    rules.push(`-A ISTIO_OUTPUT -m owner --${kind}-owner ${id} -j RETURN`);
  }
  // Apps talking to localhost (sidecar-aware apps, container-to-container) are never captured.
  rules.push(`-A ISTIO_OUTPUT -d ${localhost} -j RETURN`);
  for (const cidr of opts.outboundExcludeRanges) {
    if (cidr.family === family) rules.push(`-A ISTIO_OUTPUT -d ${cidr.text} -j RETURN`);
  }
  for (const port of opts.outboundExcludePorts)
    rules.push(`-A ISTIO_OUTPUT -p tcp --dport ${port} -j RETURN`);
  if (opts.outboundIncludeRanges === '*') {
    rules.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  } else {
    for (const cidr of opts.outboundIncludeRanges) {
      if (cidr.family === family) rules.push(`-A ISTIO_OUTPUT -d ${cidr.text} -j ISTIO_REDIRECT`);
    }
  }
  return rules;
}

/**
 * One `iptables-restore --noflush` input for `family`. The `:CHAIN - [0:0]` lines create our
 * chains, or empty them when they already exist, in the same transaction as the new rules.
 * `prelude` lines (e.g. `-D` of stale hooks found by the applier) go before the rules.
 */
export function renderRestoreInput(opts: CaptureOptions, family: Family, prelude: string[] = []): string {
  const tool = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  return [
    `# isthmus iptables: IPv${family} traffic capture (${tool} --noflush input)`,
    '*nat',
    ...OWNED_CHAINS.map((chain) => `:${chain} - [0:0]`),
    ...prelude,
    ...captureRules(opts, family),
    'COMMIT',
    '',
  ].join('\n');
}
