from tests.factories import build_world, login


def test_admin_signs_in_and_sees_w1_calendar(app, client):
    world = build_world(app)
    login(client, world.emails["admin"])
    page = client.get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    # W-1: anchor 2026-11-21, minimum term end 2027-11-20, notice deadline 2027-10-21
    assert "November 21, 2026" in page
    assert "November 20, 2027" in page
    assert "October 21, 2027" in page
