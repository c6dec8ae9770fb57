"""The ``steer_radar`` permission and the "trader" group that holds it (docs/security.md)."""

from __future__ import annotations

from django.db import migrations

TRADER_GROUP = "trader"


def create_trader_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Permissions are normally created after all migrations (post_migrate): make it now, the
    # same row post_migrate would make (it then finds it and creates nothing).
    ContentType = apps.get_model("contenttypes", "ContentType")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(
        app_label="strategies", model="controlaction"
    )
    steer, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="steer_radar",
        defaults={"name": "Can steer the radar (controls and parameters)"},
    )
    group, _ = Group.objects.get_or_create(name=TRADER_GROUP)
    group.permissions.add(steer)


def remove_trader_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.filter(name=TRADER_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("strategies", "0003_signal_order"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="controlaction",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("steer_radar", "Can steer the radar (controls and parameters)")
                ],
            },
        ),
        migrations.RunPython(create_trader_group, remove_trader_group),
    ]
