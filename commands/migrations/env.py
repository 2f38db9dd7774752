from commands.models import CommandRecord
from opswire.runtime.db import run_migrations_online

run_migrations_online(CommandRecord.metadata)
