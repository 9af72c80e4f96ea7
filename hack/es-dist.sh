#!/usr/bin/env bash
# Prints the path of Elasticsearch's integ-test distribution (the pinned
# version, with x-pack-security), fetched once from Maven Central with mvn
# into ${NEURALLOG_CACHE_DIR:-~/.cache/neurallog}/m2. tests/servers starts it
# on 127.0.0.1 with the configuration the elasticsearch role renders.
set -euo pipefail
version=${ES_VERSION:-8.15.3}
. "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"
repo="$neurallog_cache/m2"
zip="$repo/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$version/elasticsearch-$version.zip"
if [ ! -s "$zip" ]; then
  mvn -q -B "-Dmaven.repo.local=$repo" dependency:get \
    "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip" -Dtransitive=false >&2
fi
echo "$zip"
