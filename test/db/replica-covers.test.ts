import { test } from 'tap'
import { covers, rank } from '../../src/db/gtid.js'

// The replica's known position spares the GTID wait only when it really includes the primary's (src/db/replica.ts).
test('MariaDB positions: per domain, the sequence number decides', async (t) => {
  t.ok(covers('mariadb', '0-1-10', '0-1-10'))
  t.ok(covers('mariadb', '0-1-10', '0-1-9'))
  t.notOk(covers('mariadb', '0-1-9', '0-1-10'))
  t.ok(covers('mariadb', '0-2-12', '0-1-11'), 'a failover to another server id keeps counting in the domain')
  t.ok(covers('mariadb', '0-1-10,1-3-5', '1-3-5,0-1-2'))
  t.notOk(covers('mariadb', '0-1-10', '0-1-2,1-3-1'), 'a domain the replica has not seen')
  t.ok(covers('mariadb', '0-1-10', ''), 'an empty primary position')
  t.notOk(covers('mariadb', '', '0-1-1'))
  t.notOk(covers('mariadb', 'garbage', '0-1-1'))
  t.notOk(covers('mariadb', '0-1-10', 'garbage'))
})

test('MySQL GTID sets: every interval of the wanted set inside the replica\'s', async (t) => {
  const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
  const b = '4f22fb58-82db-22f2-0f44-d91bb0530673'
  t.ok(covers('mysql', `${a}:1-100`, `${a}:1-100`))
  t.ok(covers('mysql', `${a}:1-100`, `${a}:1-99`))
  t.notOk(covers('mysql', `${a}:1-99`, `${a}:1-100`))
  t.ok(covers('mysql', `${a}:1-100,\n${b}:1-5`, `${b}:1-5,${a}:1-7`), 'sets as gtid_executed prints them (comma and newline)')
  t.notOk(covers('mysql', `${a}:1-100`, `${a}:1-7,${b}:1`))
  t.ok(covers('mysql', `${a}:1-5:7-9`, `${a}:8`))
  t.notOk(covers('mysql', `${a}:1-5:7-9`, `${a}:6`))
  t.ok(covers('mysql', `${a.toUpperCase()}:1-3`, `${a}:2`))
  t.notOk(covers('mysql', `${a}`, `${a}:1`))
})

// The position writers publish in Redis keeps the newer of two (src/db/replica-fence.ts).
test('rank: grows with the position of one primary', async (t) => {
  t.equal(rank('mariadb', '0-1-10'), 10)
  t.equal(rank('mariadb', '0-1-10,1-3-5'), 15)
  t.ok(rank('mariadb', '0-2-12') > rank('mariadb', '0-1-11'), 'a failover keeps counting in the domain')
  t.equal(rank('mariadb', ''), 0)
  t.equal(rank('mariadb', 'garbage'), -1)
  const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
  t.equal(rank('mysql', `${a}:1-100`), 100)
  t.equal(rank('mysql', `${a}:1-5:7-9,\n4f22fb58-82db-22f2-0f44-d91bb0530673:1-3`), 11)
  t.equal(rank('mysql', `${a}`), -1)
})
