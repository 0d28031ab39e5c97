#!/usr/bin/env bash
# The official neo4j image's entry point, reduced to what the compose file uses: NEO4J_AUTH is passed on (the
# launcher sets that password when /data is new), and every other NEO4J_<name> variable becomes the setting
# <name>, spelt as the official image spells it ("_" for ".", "__" for "_"), so
# NEO4J_server_memory_heap_max__size=1G is server.memory.heap.max_size; the two heap settings size the JVM.
set -Eeuo pipefail

if [[ "${1:-}" != "neo4j" ]]; then
    exec "$@"
fi

settings=(server.directories.data=/data server.directories.logs=/logs server.bolt.listen_address=0.0.0.0:7687)
# G1 as in the official image's neo4j.conf: in a 1-CPU container the JVM would pick the serial collector.
jvm=(-XX:+UseG1GC -XX:+ExitOnOutOfMemoryError)
for variable in $(compgen -e -X '!NEO4J_*'); do
    case "$variable" in
        NEO4J_AUTH | NEO4J_HOME) continue ;;
    esac
    setting=${variable#NEO4J_}
    setting=${setting//_/.}
    setting=${setting//../_}
    case "$setting" in
        server.memory.heap.initial_size) jvm+=("-Xms${!variable}") ;;
        server.memory.heap.max_size) jvm+=("-Xmx${!variable}") ;;
    esac
    settings+=("$setting=${!variable}")
done

exec java "${jvm[@]}" -jar "$NEO4J_HOME/launcher.jar" "$NEO4J_HOME" "${settings[@]}"
