# Sourced by the mysql image's entrypoint when the primary's volume is created
# (docker-compose.scale.yml): the user the replica connects as.
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '${MYSQL_REPLICATION_PASSWORD}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL
