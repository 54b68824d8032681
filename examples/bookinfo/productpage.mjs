// productpage: the front page; calls details and reviews and shows both.
//   GET /  or /productpage     HTML page
//   GET /api/v1/products/<id>  the same as JSON: { details, reviews, reviewsVersion, errors }
import { getJson, sendJson, serve, POD, upstream } from './common.mjs';

async function product(req, id) {
  const [details, reviews] = await Promise.all([
    getJson(`${upstream('details')}/details/${id}`, req),
    getJson(`${upstream('reviews')}/reviews/${id}`, req),
  ]);
  const errors = {};
  if (!details.ok) errors.details = details.error || `status ${details.status}`;
  if (!reviews.ok) errors.reviews = reviews.error || `status ${reviews.status}`;
  return {
    id,
    pod: POD,
    details: details.ok ? details.body : null,
    reviews: reviews.ok ? reviews.body.reviews : null,
    reviewsVersion: reviews.ok ? reviews.body.version : null,
    reviewsPod: reviews.ok ? reviews.body.pod : null,
    errors,
  };
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function html(p) {
  const details = p.details
    ? `<dl>${['author', 'year', 'type', 'pages', 'publisher', 'language'].map((k) => `<dt>${k}</dt><dd>${escape(p.details[k])}</dd>`).join('')}</dl>`
    : `<p class="error">Error fetching product details: ${escape(p.errors.details)}</p>`;
  const reviews = p.reviews
    ? p.reviews
        .map((r) => {
          const stars = r.rating?.stars ? `<span style="color:${r.rating.color}">${'★'.repeat(r.rating.stars)}</span>` : '';
          return `<blockquote><p>${escape(r.text)}</p><small>${escape(r.reviewer)}</small> ${stars}</blockquote>`;
        })
        .join('')
    : `<p class="error">Error fetching product reviews: ${escape(p.errors.reviews)}</p>`;
  return `<!doctype html><html><head><title>Simple Bookstore App</title></head><body><h1>The Comedy of Errors</h1>${details}<h2>Reviews (${escape(p.reviewsVersion ?? '-')})</h2>${reviews}</body></html>`;
}

async function page(req, res) {
  const p = await product(req, 0);
  const body = html(p);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-served-by': POD });
  res.end(body);
}

serve('productpage', {
  '/': page,
  '/productpage': page,
  '^/api/v1/products/(\\d+)$': async (req, res, match) => sendJson(res, 200, await product(req, Number(match[1]))),
});
