# One image for every role: `isthmus controller`, `isthmus proxy` (the sidecar) and
# `isthmus iptables` (the init container). Node 24 is the current LTS line.
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native ./native
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
COPY config ./config
COPY webhooks ./webhooks
# The proxy runs as 1337 (the UID iptables exempts from capture); the init container as root.
USER 1337:1337
ENTRYPOINT ["node", "/app/bin/isthmus.js"]
