from commands.models import CommandRecord
from opswire.db import run_migrations_online

run_migrations_online(CommandRecord.metadata)
