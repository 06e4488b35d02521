# syntax=docker/dockerfile:1
# deploybot in a container: docker build -t deploybot . ; see README.md, "Running in production".
#
# Two stages: the build stage has the compilers better-sqlite3's native module needs and installs the production
# dependencies; the runtime stage copies the result onto a clean image and runs as the unprivileged `node` user.
# `npm run build` bundles src/ into dist/ (esbuild, which comes with tsx, a production dependency): it starts in
# about half the time the sources take through tsx. bin/deploybot.js runs the bundle while it is newer than src/.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs the `prepare` script (scripts/build.mjs), which has no src/ to bundle yet and says so; it bundles below.
COPY scripts ./scripts
# Build better-sqlite3 from source against this image's Node, rather than trust a downloaded binary.
RUN npm_config_build_from_source=better-sqlite3 npm ci --omit=dev \
 && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY examples ./examples
COPY manifest.yml tsconfig.json ./
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    DEPLOYBOT_DB=/data/deploybot.db \
    PORT=3000 \
    METRICS_PORT=9090 \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# The database lives on a volume the `node` user owns; everything else is read-only to it.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
# 3000: Slack's requests in HTTP mode. 9090: /healthz, /readyz and /metrics (both modes).
EXPOSE 3000 9090
# Liveness only: /readyz also fails while Slack or the database is down, and restarting would not help then.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.METRICS_PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# deploybot drains on SIGTERM for up to 8 s, inside `docker stop`'s default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/deploybot.js"]
