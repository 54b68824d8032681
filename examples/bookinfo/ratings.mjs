// ratings: star ratings of the book's reviews.
import { sendJson, serve, POD } from './common.mjs';

serve('ratings', {
  '^/ratings/(\\d+)$': (_req, res, match) =>
    sendJson(res, 200, { id: Number(match[1]), ratings: { Reviewer1: 5, Reviewer2: 4 }, pod: POD }),
});
