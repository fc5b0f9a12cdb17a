# xoauth2-relay container image. Build: docker build -t xoauth2-relay .
# Run:   docker run -v xoauth2-state:/var/lib/xoauth2-relay -v ./config.yaml:/etc/xoauth2-relay/config.yaml:ro \
#          -p 2525:2525 -p 127.0.0.1:8025:8025 xoauth2-relay
# (in the config: stateDir /var/lib/xoauth2-relay; admin.listen 0.0.0.0:8025 needs admin.passwordHash)

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production XOAUTH2_RELAY_CONFIG=/etc/xoauth2-relay/config.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
RUN mkdir -p /var/lib/xoauth2-relay /etc/xoauth2-relay && chown node:node /var/lib/xoauth2-relay
USER node
VOLUME ["/var/lib/xoauth2-relay"]
EXPOSE 2525 1143 1110 8025
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8025/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "/app/bin/xoauth2-relay.js"]
CMD ["run"]
