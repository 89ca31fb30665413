# Sourced by the mysql image's entrypoint when the replica's volume is created
# (docker-compose.scale.yml): follow the primary from its first GTID (auto-position). Everything else,
# the quire database and user included, arrives through replication; the replica starts replicating
# on its next (real) start, read-only for everyone but replication (super_read_only, persisted).
docker_process_sql --database=mysql <<SQL
CHANGE REPLICATION SOURCE TO SOURCE_HOST='mysql', SOURCE_PORT=3306, SOURCE_USER='repl',
  SOURCE_PASSWORD='${MYSQL_REPLICATION_PASSWORD}', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1,
  SOURCE_CONNECT_RETRY=5;
SET PERSIST super_read_only = ON;
SQL
