// details: the book's bibliographic details.
import { sendJson, serve, POD } from './common.mjs';

serve('details', {
  '^/details/(\\d+)$': (_req, res, match) =>
    sendJson(res, 200, {
      id: Number(match[1]),
      author: 'William Shakespeare',
      year: 1595,
      type: 'paperback',
      pages: 200,
      publisher: 'PublisherA',
      language: 'English',
      'ISBN-10': '1234567890',
      'ISBN-13': '123-1234567890',
      pod: POD,
    }),
});
