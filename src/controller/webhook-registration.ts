/**
 * Registers the webhook configurations from `webhooks/` with the apiserver and keeps their
 * caBundle pointing at our serving CA. Out of cluster (development, tests) the webhooks are
 * reached by URL instead of through the Service.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { WEBHOOKS_DIR } from '../util/paths.js';
import { isApiError } from './kube.js';

type WebhookConfigKind = 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration';

interface WebhookConfig {
  apiVersion: string;
  kind: WebhookConfigKind;
  metadata: { name: string; resourceVersion?: string; [k: string]: unknown };
  webhooks: Array<{
    name: string;
    clientConfig: {
      service?: { namespace?: string; path?: string; [k: string]: unknown };
      url?: string;
      caBundle?: string;
    };
  }>;
}

export interface RegistrationOptions {
  caCertPem: string;
  /** Control-plane namespace the Service lives in (rewrites the template's). */
  namespace: string;
  /** When set, webhooks are called at `<urlBase><path>` instead of through the Service. */
  urlBase?: string;
  dir?: string;
}

/** The webhook configurations in `webhooks/`, rendered for this installation. Pure apart from reading files. */
export function renderWebhookConfigs(opts: RegistrationOptions): WebhookConfig[] {
  const dir = opts.dir ?? WEBHOOKS_DIR;
  const out: WebhookConfig[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const obj = doc.toJS() as WebhookConfig | null;
      if (
        !obj ||
        (obj.kind !== 'ValidatingWebhookConfiguration' && obj.kind !== 'MutatingWebhookConfiguration')
      )
        continue;
      for (const hook of obj.webhooks) {
        const path = hook.clientConfig.service?.path ?? '/';
        if (opts.urlBase) {
          hook.clientConfig = { url: `${opts.urlBase.replace(/\/$/, '')}${path}` };
        } else if (hook.clientConfig.service) {
          hook.clientConfig.service.namespace = opts.namespace;
        }
        hook.clientConfig.caBundle = Buffer.from(opts.caCertPem).toString('base64');
      }
      out.push(obj);
    }
  }
  return out;
}

/** Creates or updates each configuration; returns the names it wrote. */
export async function registerWebhooks(
  api: AdmissionregistrationV1Api,
  opts: RegistrationOptions,
): Promise<string[]> {
  const written: string[] = [];
  for (const desired of renderWebhookConfigs(opts)) {
    const name = desired.metadata.name;
    const validating = desired.kind === 'ValidatingWebhookConfiguration';
    let current: WebhookConfig | undefined;
    try {
      current = (validating
        ? await api.readValidatingWebhookConfiguration({ name })
        : await api.readMutatingWebhookConfiguration({ name })) as unknown as WebhookConfig;
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
    if (!current) {
      const body = desired as never;
      if (validating) await api.createValidatingWebhookConfiguration({ body });
      else await api.createMutatingWebhookConfiguration({ body });
      written.push(name);
      continue;
    }
    // We own clientConfig (URL/Service and caBundle); the rest is the manifest's business.
    if (sameClientConfigs(current, desired)) continue;
    const body = {
      ...desired,
      metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion },
    } as never;
    if (validating) await api.replaceValidatingWebhookConfiguration({ name, body });
    else await api.replaceMutatingWebhookConfiguration({ name, body });
    written.push(name);
  }
  return written;
}

function sameClientConfigs(a: WebhookConfig, b: WebhookConfig): boolean {
  const key = (c: WebhookConfig) =>
    JSON.stringify(
      c.webhooks.map((w) => [
        w.name,
        w.clientConfig.url,
        w.clientConfig.service?.namespace,
        w.clientConfig.service?.path,
        w.clientConfig.caBundle,
      ]),
    );
  return key(a) === key(b);
}
