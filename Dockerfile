# xoauth2-relay container image on Node 24 (the active LTS; docs/running.md has the whole story).
# Build: docker build -t xoauth2-relay .
# Run:  docker run -d --name xoauth2-relay --stop-timeout 30 \
#         -v xoauth2-state:/var/lib/xoauth2-relay -v ./config.yaml:/etc/xoauth2-relay/config.yaml:ro \
#         -p 2525:2525 -p 127.0.0.1:8025:8025 xoauth2-relay
# In the config: stateDir /var/lib/xoauth2-relay. To reach the admin page through the published port it must
# listen on 0.0.0.0:8025 inside the container, and then the relay insists on admin.passwordHash.

# ── build: compile TypeScript (dev dependencies live and die here) ───────────────────────────────────────────
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci
COPY src ./src
RUN npm run build

# ── runtime: production dependencies and the compiled code only ──────────────────────────────────────────────
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    XOAUTH2_RELAY_CONFIG=/etc/xoauth2-relay/config.yaml \
    XOAUTH2_RELAY_HEALTHCHECK_URL=http://127.0.0.1:8025/healthz
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# The state volume belongs to the unprivileged user the relay runs as (uid 1000 "node" of the base image).
RUN mkdir -p /var/lib/xoauth2-relay /etc/xoauth2-relay && chown node:node /var/lib/xoauth2-relay && chmod 700 /var/lib/xoauth2-relay
USER node
VOLUME ["/var/lib/xoauth2-relay"]
# SMTP, IMAP and POP3 for devices (schema defaults), and the admin page / metrics.
EXPOSE 2525 1143 1110 8025
# Liveness only (/healthz); orchestrators that route traffic should also probe /readyz. Change the URL with
# the admin.listen port: docker run -e XOAUTH2_RELAY_HEALTHCHECK_URL=http://127.0.0.1:9025/healthz …
# With admin.tls.enabled (needed when the admin page listens on 0.0.0.0 in the container), set the URL to
# https://127.0.0.1:8025/healthz: the probe talks to its own loopback and does not check the page's certificate.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.XOAUTH2_RELAY_HEALTHCHECK_URL);require(u.protocol==='https:'?'https':'http').get(u,{rejectUnauthorized:false},(r)=>process.exit(r.statusCode>=200&&r.statusCode<300?0:1)).on('error',()=>process.exit(1))"]
# SIGTERM drains sessions and deliveries for up to 20 s: give it that (docker's default is 10 s, hence
# --stop-timeout 30 above; compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/xoauth2-relay.js"]
CMD ["run"]
