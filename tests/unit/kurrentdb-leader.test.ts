/** Where the KurrentDB adapter reconnects after a v2 not-leader answer, and what it takes for one. */
import test from 'ava';
import { towardsLeader } from '../../adapters/eventstore/kurrentdb.ts';
import { notLeaderNode } from '../../adapters/eventstore/kurrentdb-not-leader.ts';

const leader = { host: '10.0.0.2', port: 2113 };

test('one host is replaced by the leader, credentials and settings kept', (t) => {
  t.is(towardsLeader('kurrentdb://10.0.0.1:2113?tls=false', leader), 'kurrentdb://10.0.0.2:2113?tls=false');
  t.is(towardsLeader('esdb://admin:changeit@node1:2113/?tls=true', leader), 'esdb://admin:changeit@10.0.0.2:2113/?tls=true');
  t.is(towardsLeader('kurrentdb://node1?tls=false', { host: '::1', port: 2114 }), 'kurrentdb://[::1]:2114?tls=false');
});

test('with discovery the connection string stays, its discovery finds the leader', (t) => {
  for (const discovering of ['kurrentdb+discover://cluster.local:2113', 'kurrentdb://a:2113,b:2113,c:2113?tls=false']) {
    t.is(towardsLeader(discovering, leader), discovering);
  }
});

test('only a FAILED_PRECONDITION carrying NotLeaderNodeErrorDetails is a v2 not-leader answer', (t) => {
  const metadata = (trailer?: Uint8Array) => ({ get: (key: string) => (key === 'grpc-status-details-bin' && trailer ? [trailer] : []) });
  t.is(notLeaderNode(new Error('plain')), undefined);
  t.is(notLeaderNode({ code: 9, metadata: metadata() }), undefined);
  t.is(notLeaderNode({ code: 9, metadata: metadata(Uint8Array.from([0xff, 0xff])) }), undefined, 'not a Status');
  t.is(notLeaderNode(undefined), undefined);
});
