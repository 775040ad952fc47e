# The tiercache image: one CLI for the operator, the proxy and the cluster manager, on Node 24
# (which runs the TypeScript sources directly). Production dependencies only, on a distroless
# base that runs as the non-root user 65532 the chart's pod security expects.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY lib ./lib
COPY proxy ./proxy
COPY operator ./operator
# The CRDs, for `tiercache crds` (the chart's pre-upgrade hook).
COPY crds ./crds
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/tiercache.ts"]
