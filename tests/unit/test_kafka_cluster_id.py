"""The KRaft cluster id given to `kafka.tools.StorageTool format -t`: an id starting with '-'
was read as an option and failed one fresh-clone CI run."""

import base64

from deskpulse.stack.services import kafka_cluster_id


def test_cluster_ids_are_uuids_that_never_start_with_a_dash():
    ids = {kafka_cluster_id() for _ in range(5000)}  # ~78 would start with '-' unfiltered
    assert len(ids) == 5000
    for cid in ids:
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
