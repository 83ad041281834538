"""French: the corpus's language."""

from __future__ import annotations

from functools import lru_cache

from .base import LanguagePack, packs


def _kinds(**groups: str) -> dict[str, str]:
    return {noun: kind for kind, nouns in groups.items() for noun in nouns.split()}


@packs.register("fr")
@lru_cache(maxsize=1)
def french() -> LanguagePack:
    return LanguagePack(
        code="fr", spacy_model="fr_core_news_md", stemmer="french", stopwords="french", text_search="french",
        question_words=frozenset("qui que quoi quand ou où comment pourquoi combien quel quelle quels quelles "
                                 "lequel laquelle lesquels lesquelles".split()),
        months=frozenset("janvier février mars avril mai juin juillet août septembre octobre novembre "
                         "décembre".split()),
        days=frozenset("lundi mardi mercredi jeudi vendredi samedi dimanche".split()),
        light_verbs=frozenset("être avoir faire aller pouvoir devoir".split()),
        continuations=frozenset(["et ensuite", "ensuite", "et apres", "apres", "et puis", "puis", "la suite",
                                  "et la suite", "et apres ca", "que s est il passe ensuite",
                                  "que s est il passe apres", "et ensuite que s est il passe"]),
        kind_of_noun=_kinds(
            place="ville pays région lieu endroit continent capitale département commune quartier île fleuve "
                  "rivière montagne territoire état province localité village",
            organisation="parti entreprise organisation club équipe société association institution groupe "
                         "compagnie marque journal université école organisme",
            date="année date siècle jour mois époque période décennie an",
            number="nombre pourcentage âge taille superficie population montant prix hauteur longueur altitude "
                   "distance poids durée quantité part taux budget somme chiffre",
            person="nom personnage auteur fondateur président roi reine homme femme personne joueur artiste "
                   "écrivain peintre architecte chef dirigeant empereur pape"),
        strings={
            "abstention": "Je n'ai pas trouvé cette information dans les documents.",
            "unsure": "Je ne suis pas certain ; voici le passage le plus proche :",
        })
