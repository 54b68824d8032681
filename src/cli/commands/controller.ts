/** `isthmus controller`: the control-plane process (webhooks today; reconcile, CA and push later). */
import type { Command } from 'commander';
import { DEFAULT_ROOT_NAMESPACE, PORTS } from '../../api/mesh.js';

export function register(program: Command): void {
  program
    .command('controller')
    .description(
      'Run the mesh control plane: admission webhooks (validate, inject) with a self-managed certificate',
    )
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then ~/.kube/config)')
    .option(
      '--namespace <ns>',
      'namespace the controller runs in',
      process.env.POD_NAMESPACE || DEFAULT_ROOT_NAMESPACE,
    )
    .option('--root-namespace <ns>', 'the mesh root namespace', DEFAULT_ROOT_NAMESPACE)
    .option('--webhook-port <port>', 'HTTPS port of the admission webhooks', String(PORTS.webhooks))
    .option('--webhook-host <host>', 'address to bind the webhooks to', '0.0.0.0')
    .option(
      '--webhook-url <url>',
      'register webhooks at this base URL instead of the Service (out-of-cluster runs)',
    )
    .option(
      '--ca-port <port>',
      'HTTPS port of the mesh CA (CSR signing); 0 turns it off',
      String(PORTS.controlPlaneXds),
    )
    .option('--proxy-image <image>', 'image injected as istio-proxy and istio-init')
    .option('--no-register', 'do not create/update the webhook configurations')
    .option('--reconcile', 'watch the cluster, compile per-workload tables and publish them to ConfigMaps')
    .option(
      '--no-leader-election',
      'write without holding a Lease (one replica only): applies to the reconcile loop and the root-cert publisher',
    )
    .action(
      async (opts: {
        kubeconfig?: string;
        namespace: string;
        rootNamespace: string;
        webhookPort: string;
        webhookHost: string;
        webhookUrl?: string;
        proxyImage?: string;
        caPort: string;
        register: boolean;
        reconcile?: boolean;
        leaderElection: boolean;
      }) => {
        const port = Number(opts.webhookPort);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new Error(`--webhook-port ${opts.webhookPort} is not a port number`);
        const caPort = Number(opts.caPort);
        if (!Number.isInteger(caPort) || caPort < 0 || caPort > 65535)
          throw new Error(`--ca-port ${opts.caPort} is not a port number`);
        // Loaded on use: @kubernetes/client-node takes ~1 s to import, which other commands should not pay.
        const { runController } = await import('../../controller/main.js');
        const running = await runController({
          ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
          namespace: opts.namespace,
          rootNamespace: opts.rootNamespace,
          webhookPort: port,
          webhookHost: opts.webhookHost,
          ...(opts.webhookUrl ? { webhookUrl: opts.webhookUrl } : {}),
          register: opts.register,
          ...(opts.reconcile ? { reconcile: true } : {}),
          leaderElection: opts.leaderElection,
          ...(opts.proxyImage ? { proxyImage: opts.proxyImage } : {}),
          ...(caPort ? { caPort } : {}),
        });
        const shutdown = () => {
          running.stop().finally(() => process.exit(0));
        };
        process.once('SIGTERM', shutdown);
        process.once('SIGINT', shutdown);
      },
    );
}
