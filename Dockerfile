# The tiercache image: the CLI (proxy, operator, cluster manager) on Node 24.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY bin ./bin
COPY lib ./lib
COPY proxy ./proxy
USER node
ENTRYPOINT ["node", "/app/bin/tiercache.ts"]
