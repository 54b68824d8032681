// reviews: v1 shows no ratings, v2 black stars, v3 red stars (v2 and v3 call ratings).
// The version comes from $VERSION (the Deployment sets it from its `version` label).
import { getJson, sendJson, serve, POD, upstream } from './common.mjs';

const VERSION = process.env.VERSION || 'v1';
const STAR_COLOR = { v2: 'black', v3: 'red' };
const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

serve(`reviews-${VERSION}`, {
  '^/reviews/(\\d+)$': async (req, res, match) => {
    const id = Number(match[1]);
    const color = STAR_COLOR[VERSION];
    if (!color) return sendJson(res, 200, { id, version: VERSION, pod: POD, reviews: REVIEWS });
    const ratings = await getJson(`${upstream('ratings')}/ratings/${id}`, req);
    const reviews = REVIEWS.map((r) => ({
      ...r,
      rating: ratings.ok
        ? { stars: ratings.body.ratings?.[r.reviewer] ?? 0, color }
        : { error: 'Ratings service is currently unavailable', status: ratings.status },
    }));
    sendJson(res, 200, { id, version: VERSION, pod: POD, reviews });
  },
});
