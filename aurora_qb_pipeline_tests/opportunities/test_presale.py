"""Pre-sale tracking: agreement and project status webhooks (through the receiver and the inbox)
move the linked opportunity's Aurora Stage; the signed agreement and the proposal are attached
to it as files."""

from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app

from ..webhooks.conftest import SECRET, subscribe


def test_stages_and_files_reach_the_opportunity(pipeline, opportunities, path):
    inbox = Inbox(pipeline.settings.inbox_database_url)
    receiver = ReceiverThread(create_receiver_app(inbox, [SECRET])).start()
    try:
        subscribe(pipeline, receiver.url)
        rid = opportunities.add()
        path.tick()
        aurora = pipeline.sandbox.aurora
        record = opportunities.get(rid)
        aurora.accept_design_request(None, record["design_request_id"])
        design_id = aurora.get_design_request(None, record["design_request_id"])["design_id"]
        agreement = aurora.create_agreement(design_id)
        aurora.set_agreement_status(agreement["id"], "viewed")
        aurora.webhooks.wait_settled()
        path.tick()
        record = opportunities.get(rid)
        assert record["stage"] == "agreement viewed"
        assert record["proposal_file"] and record["agreement_file"] is None

        aurora.set_agreement_status(agreement["id"], "signed")
        aurora.set_project_status(record["project_id"], "Contract Signed")
        aurora.webhooks.wait_settled()
        path.tick()
        record = opportunities.get(rid)
        assert record["stage"] == "Contract Signed"  # the newest event wins; the signature is kept
        qb = pipeline.sandbox.quickbase
        agreement_pdf = qb.file_content(opportunities.table_id, int(rid), opportunities.fid["agreement_file"], 1)
        assert agreement_pdf.startswith(b"%PDF")
        assert len(record["proposal_file"]) == 1  # attached once, not again with every stage
    finally:
        receiver.stop()
        inbox.close()
